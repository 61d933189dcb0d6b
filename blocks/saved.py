"""Which blocks of a type are saved on the Prefect API, to name a misspelt or missing one.

Prefect's Block.load says only "Unable to find block document named rollway-targts for block
type rollway-targets": a typo, or a server holding none of that type, left the person to list
the blocks to find the one meant.
"""

from __future__ import annotations

import difflib

from rollway.url_passwords import passwords_hidden


def saved_block_names(block_type: str) -> list[str] | None:
    """The names of the blocks of ``block_type`` saved on the Prefect API (none when the type is
    not registered there), or None when they cannot be read. Their secrets are not fetched."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        with get_client(sync_client=True) as client:
            documents = client.read_block_documents_by_type(block_type, include_secrets=False)
    except PrefectHTTPStatusError as err:
        # 404: the type is not registered there, so no block of it is saved.
        return [] if err.response.status_code == 404 else None
    except Exception:  # noqa: BLE001 - only a better message is lost: the caller says what Prefect said
        return None
    return sorted(d.name for d in documents if d.name and not d.is_anonymous)


def unsaved_block(name: str | None, block_type: str, given_as: str, meant: str = "{!r}") -> str | None:
    """"no <type> block named <name> on the Prefect API ... (saved there: ...); pass the name of a
    saved one as <given_as> (did you mean <meant>?)", or None when ``name`` is saved (it did not
    load for another reason) or the saved names cannot be read. ``meant`` formats the saved name
    closest to ``name``."""
    from prefect.settings import PREFECT_API_URL

    saved = saved_block_names(block_type)
    if name is None or saved is None or name in saved:
        return None
    api = without_password(PREFECT_API_URL.value()) or "ephemeral"
    close = difflib.get_close_matches(name, saved, n=1)
    more = f" and {len(saved) - 10} more" if len(saved) > 10 else ""
    shown = ", ".join(saved[:10]) + more if saved else "none"
    guess = f" (did you mean {meant.format(close[0])}?)" if close else ""
    return (f"no {block_type} block named {name!r} on the Prefect API {api} (saved there: {shown}); pass the name "
            f"of a saved one as {given_as}{guess}")


def without_password(url: str | None) -> str | None:
    """``url`` with the password it may hold (a server behind basic auth reached as
    ``https://<user>:<password>@host/api``) said as ``***``: the address is said to a person, on a
    terminal and in a failed run's state."""
    return passwords_hidden(url) if url else url

