"""The password of a URL quoted in a text, said as ``***``: a message that quotes the Prefect
API's address (a server behind basic auth reached as ``https://<user>:<password>@host/api``), or an
HTTP client's error that names the URL it asked. Here, in ``rollway/``, for its own errors
(``rollway.api_error``); ``blocks/saved.py`` says the address of the blocks' API with it too.
"""

from __future__ import annotations

import re

# ``scheme://user:password@``, wherever it is quoted in a text (an HTTP client's error names the URL it
# asked). The password runs to the host's ``@``, the last before the path: an unencoded ``@`` in it
# is the password's too, as urlsplit reads it.
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*):[^\s/]*@")


def passwords_hidden(text: str) -> str:
    """``text`` with the password of every URL in it said as ``***`` (a message that quotes the
    Prefect API's address, or an error that does)."""
    return _USERINFO.sub(r"\1:***@", text)
