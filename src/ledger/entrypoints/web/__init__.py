"""The HTTP face of the ledger: the JSON API and the support console, one FastAPI app.

`app` composes it; each router is a module named for whom it serves (`intake`, `learners`,
`operations`, `public`, `console`). `auth` says who is asking and records what staff read;
`clients` holds the connections; `requestlog` and `problems` make every request one log line and
every failure a clear answer.
"""
