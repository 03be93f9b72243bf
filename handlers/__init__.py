"""What commands mean, and the ways they arrive (console now; Slack and scheduled jobs next).

grammar   parses a command line            releases  the use cases (upload, submit, …)
commands  line in → reply out              render    results as text
config    settings and miniship.toml       console   the prompt and scripts
watcher   asks platforms about reviews on an interval
"""
