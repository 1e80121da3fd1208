"""python-telegram-bot's HTTP layer on aiohttp instead of httpx.

PTB lets a bot bring its own :class:`telegram.request.BaseRequest`. Profiling the sandbox at
25 Telegram sends per second (bench/e2e.py, py-spy) put the default httpx/httpcore stack at
about a third of the whole event loop; aiohttp, which discord.py and the X connector already
use, does the same requests for a fraction of that. Semantics follow PTB's ``HTTPXRequest``:
form-encoded JSON parameters, multipart when files are attached, ``TimedOut`` for timeouts and
``NetworkError`` for transport errors (PTB turns status codes into its own errors).
"""

from __future__ import annotations

from urllib.parse import urlencode

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a bounded connection pool; ``timeout`` is the default for
    connecting, writing and reading (a call may override each, as PTB's long polls do)."""

    def __init__(self, *, pool_size: int, timeout: float | None) -> None:
        self._pool_size = pool_size
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def _pick(self, value: ODVInput[float]) -> float | None:
        return self._timeout if isinstance(value, DefaultValue) else value

    async def do_request(  # noqa: PLR0917 (PTB's signature)
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        connect, pool = self._pick(connect_timeout), self._pick(pool_timeout)
        timeout = aiohttp.ClientTimeout(
            total=None,
            # waiting for a pooled connection and opening it
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=self._pick(read_timeout),
        )
        data: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            params = request_data.json_parameters
            files = request_data.multipart_data
            if files:
                form = aiohttp.FormData()
                for key, value in params.items():
                    form.add_field(key, value)
                for name, (filename, content, mimetype) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                data = form
            elif params:  # encoded here: aiohttp's FormData builds a multipart writer even for this
                data = urlencode(params).encode()
                headers = _FORM
        try:
            async with session.request(method, url, data=data, headers=headers, timeout=timeout) as resp:
                return resp.status, await resp.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
