"""Ralph's LRS API on a port, for the xAPI tests: run by the Python of `.venv-ralph` (made by
`make lrs`), never imported by the tests themselves.

Ralph 5.1's file-system backend creates its statements file on the first write and refuses
every later one (its writes default to "create"); an LRS that takes one batch is no LRS, so this
starts Ralph's own API with appends as its file backend's default. Nothing else changes:
authentication, validation, conflicts and queries are Ralph's.
"""

import sys

import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.data.fs import FSDataBackend

FSDataBackend.default_operation_type = BaseOperationType.APPEND  # see the docstring

uvicorn.run("ralph.api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
