"""Shared by the dashboard's tests: tokens, the service under test, signing in."""

import httpx
from playwright.sync_api import Page, expect

ADMIN, CLIENT, WORKER = "ui-admin-secret", "ui-client-secret", "ui-worker-secret"
TOKENS = f"{ADMIN}:admin,{CLIENT}:client,{WORKER}:worker"


class Service:
    """The service under test: its URL and an admin REST client."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.rest = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30
        )


def sign_in(page: Page, url: str, token: str) -> None:
    """Open the dashboard at ``url`` and sign in with ``token``."""
    page.goto(url)
    page.fill("#token", token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#role")).to_be_visible()
