"""tweepy's AsyncClient on our own aiohttp session, with X's errors translated at this edge.

tweepy 4.17 hard-codes ``https://api.twitter.com``. Its public ``session`` attribute takes our
own :class:`aiohttp.ClientSession`; when ``api_base_url`` is not an official X host, a client
middleware sends every request there instead (the sandbox in tests). The official hosts are left
untouched: OAuth 1.0a signatures cover the host, so rewriting a signed request to another host
would break it at X.

tweepy's ``wait_on_rate_limit`` is off: it sleeps inside the request and retries without a cap
(in a tight loop when a 429 has no reset header). Rate limits are handled by
:class:`~connectors.twitter.ratelimit.RateLimiter` instead, per endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import tweepy
from tweepy.asynchronous import AsyncClient
from yarl import URL

from bot.errors import (
    AuthError,
    ConnectorError,
    MalformedPayload,
    PermanentSendError,
    RateLimited,
    TransientError,
)
from connectors.twitter.budget import Budget
from connectors.twitter.ratelimit import RateLimiter
from connectors.twitter.settings import TwitterSettings

Json = dict[str, Any]
OFFICIAL_HOSTS = frozenset({"api.x.com", "api.twitter.com"})
Operation = Callable[[Any], Awaitable[Any]]


class RejectedRead(TransientError):
    """X refused a read as malformed (400/404), e.g. an expired pagination token."""


def redirect_middleware(base_url: str) -> aiohttp.ClientMiddlewareType:
    """An aiohttp client middleware that sends X API requests to ``base_url`` instead."""
    target = URL(base_url)
    prefix = target.path.rstrip("/")

    async def middleware(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if request.url.host in OFFICIAL_HOSTS:
            request.url = URL.build(
                scheme=target.scheme,
                host=target.raw_host or "",
                port=target.port,
                path=prefix + request.url.raw_path,
                query_string=request.url.raw_query_string,
                encoded=True,
            )
        return await handler(request)

    return middleware


def _headers(response: Any) -> Mapping[str, str]:
    headers = getattr(response, "headers", None)
    return headers if headers is not None else {}


def _describe(exc: tweepy.HTTPException) -> str:
    status = getattr(exc.response, "status", "?")
    detail = "; ".join(str(m) for m in exc.api_messages) or str(exc).strip() or type(exc).__name__
    return f"X API {status}: {detail}"


class XClient:
    """One AsyncClient and session per connector; every call goes through :meth:`call`."""

    def __init__(
        self, settings: TwitterSettings, limiter: RateLimiter, budget: Budget, log: logging.Logger
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.budget = budget
        self.log = log
        self._session: aiohttp.ClientSession | None = None
        self._api: AsyncClient | None = None

    async def open(self) -> None:
        if self._session is not None:
            return
        middlewares: tuple[aiohttp.ClientMiddlewareType, ...] = ()
        if URL(self.settings.api_base_url).host not in OFFICIAL_HOSTS:
            middlewares = (redirect_middleware(self.settings.api_base_url),)
        self._session = aiohttp.ClientSession(
            middlewares=middlewares, timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout)
        )
        s = self.settings
        self._api = AsyncClient(
            bearer_token=s.bearer_token.get_secret_value(),
            consumer_key=s.consumer_key.get_secret_value(),
            consumer_secret=s.consumer_secret.get_secret_value(),
            access_token=s.access_token.get_secret_value(),
            access_token_secret=s.access_token_secret.get_secret_value(),
            return_type=aiohttp.ClientResponse,  # we need the headers of every answer
            wait_on_rate_limit=False,
        )
        self._api.session = self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None
        self._api = None

    async def call(self, endpoint: str, operation: Operation, *, write: bool = False) -> Json:
        """Run one tweepy call; return the JSON body or raise the connector error tree.

        ``write`` marks calls that create something: a refusal (400/403/404) is then a
        :class:`PermanentSendError`; for reads a 403 means the credentials lack access.
        """
        if self._api is None:
            raise TransientError("the X connector is not started")
        self.limiter.check(endpoint)
        self.budget.count_request(endpoint)
        try:
            response = await operation(self._api)
            self.limiter.observe(endpoint, _headers(response))
            body = await response.json()
        except tweepy.TooManyRequests as exc:
            wait = self.limiter.on_throttled(endpoint, _headers(exc.response))
            raise RateLimited(wait, f"X {endpoint}: 429 Too Many Requests", scope=endpoint) from exc
        except tweepy.Unauthorized as exc:
            raise AuthError(_describe(exc)) from exc
        except tweepy.Forbidden as exc:
            if write:
                raise PermanentSendError(_describe(exc)) from exc
            raise AuthError(_describe(exc)) from exc
        except (tweepy.BadRequest, tweepy.NotFound) as exc:
            if write:
                raise PermanentSendError(_describe(exc)) from exc
            raise RejectedRead(_describe(exc)) from exc
        except tweepy.TwitterServerError as exc:
            raise self._server_error(endpoint, exc.response, _describe(exc)) from exc
        except tweepy.HTTPException as exc:
            raise TransientError(_describe(exc)) from exc
        except aiohttp.ContentTypeError as exc:  # an error page that is not JSON
            raise self._status_error(endpoint, exc, write=write) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"X {endpoint}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            raise MalformedPayload(f"X {endpoint}: invalid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise MalformedPayload(f"X {endpoint}: expected a JSON object")
        return body

    def _server_error(self, endpoint: str, response: Any, detail: str) -> ConnectorError:
        headers = _headers(response)
        retry_after = headers.get("Retry-After") or headers.get("retry-after")
        if retry_after is not None:
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = None
            if seconds is not None:
                wait = self.limiter.on_throttled(endpoint, {}, retry_after=seconds)
                return RateLimited(wait, f"{detail} (Retry-After)", scope=endpoint)
        return TransientError(detail)

    def _status_error(self, endpoint: str, exc: aiohttp.ContentTypeError, *, write: bool) -> ConnectorError:
        status = exc.status
        detail = f"X {endpoint}: HTTP {status} with a non-JSON body"
        if status == 429:
            return RateLimited(self.limiter.on_throttled(endpoint, exc.headers or {}), detail, scope=endpoint)
        if status == 401:
            return AuthError(detail)
        if status >= 500 or status == 0:
            return self._server_error(endpoint, exc, detail)
        if write and 400 <= status < 500:
            return PermanentSendError(detail)
        return TransientError(detail)
