"""The caller as a page shows them (name, role in Chinese, scope): what every page route
hands to :func:`web.pages.render` (route modules import no other route module)."""

from __future__ import annotations

from service.auth import ROLE_ZH, Principal
from web.pages import PageUser


def page_user(caller: Principal) -> PageUser:
    return PageUser(caller.name, caller.role.value, ROLE_ZH[caller.role], caller.scope)
