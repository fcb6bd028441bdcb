"""The HTTP edge's generic parts, which know no capability: the problem+json error table
(``errors``), the request's unit of work (``unit_of_work``), read-your-writes tokens
(``consistency``), OpenAPI helpers and the core's own routes. The app is composed in
:mod:`lmsd.app`."""
