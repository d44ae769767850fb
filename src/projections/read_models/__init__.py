"""The read models, one module each: the question it answers, its tables, its handlers, its
queries. The machinery that feeds them (rows, positions, generations, the worker) is one folder
up; a new read model is a module here plus a line in `projections.catalog`."""
