"""Step executors: one module per step kind (command, subdag, http, ssh, docker, jq, mail)."""
