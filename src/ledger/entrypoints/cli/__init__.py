"""The `ledger` command, one module per audience: `main` assembles them (and holds the commands
for everyone: stack, run, publish, schemas, demo), `support` answers support staff, `operations`
serves operators (projections, rejections), `audit` serves auditors, `bench` runs the
benchmarks, `chaos` the fault matrix; `console` holds what they share."""
