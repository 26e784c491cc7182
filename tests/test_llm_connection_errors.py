"""A timeout or a broken connection is classified by what happened, not by which layer of a
provider SDK reported it: SDK releases move that (anthropic 2.17 began wrapping a cut stream's
transport error in its own connection error, and a test that matched the old wording broke)."""

import anthropic
import httpx2
import openai
import pytest

from infra.llm.base import ProviderTimeout, ProviderUnavailable, StreamCut
from infra.llm.http_errors import connection_error

REQUEST = httpx2.Request("POST", "http://127.0.0.1:9/v1/messages")


def cut() -> httpx2.TransportError:
    return httpx2.RemoteProtocolError("peer closed connection (incomplete chunked read)")


def timeout() -> httpx2.TransportError:
    return httpx2.ReadTimeout("timed out")


def refused() -> httpx2.TransportError:
    return httpx2.ConnectError("[Errno 111] Connection refused")


def raw(error: httpx2.TransportError) -> BaseException:
    return error


def wrapped_by_anthropic(error: httpx2.TransportError) -> BaseException:
    return _raised_from(anthropic.APIConnectionError(request=REQUEST), error)


def wrapped_by_openai(error: httpx2.TransportError) -> BaseException:
    return _raised_from(openai.APIConnectionError(request=REQUEST), error)


def wrapped_twice(error: httpx2.TransportError) -> BaseException:
    return _raised_from(RuntimeError("middleware"), wrapped_by_anthropic(error))


def _raised_from(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        raise outer from cause
    except BaseException as e:  # the raised object, with its chain set
        return e


LAYERS = [raw, wrapped_by_anthropic, wrapped_by_openai, wrapped_twice]


@pytest.mark.parametrize("layer", LAYERS)
def test_a_connection_lost_mid_reply_is_a_stream_cut_whichever_layer_reports_it(layer) -> None:
    error = connection_error("p", layer(cut()), "after 2 chunks")
    assert type(error) is StreamCut
    assert error.retryable
    assert "after 2 chunks" in str(error)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_connection_lost_before_the_reply_is_unavailable_not_a_cut(layer) -> None:
    for failure in (cut(), refused()):
        error = connection_error("p", layer(failure), None)
        assert type(error) is ProviderUnavailable
        assert error.retryable


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("cut_after", [None, "after 2 chunks"])
def test_a_read_timeout_is_a_timeout_before_or_during_the_reply(layer, cut_after) -> None:
    error = connection_error("p", layer(timeout()), cut_after)
    assert type(error) is ProviderTimeout
    assert error.retryable


def test_an_error_merely_raised_while_handling_a_transport_error_is_not_caused_by_it() -> None:
    try:
        try:
            raise timeout()
        except httpx2.TransportError:
            raise anthropic.APIConnectionError(request=REQUEST)  # noqa: B904 - the point
    except anthropic.APIConnectionError as e:
        error = connection_error("p", e, None)
    assert type(error) is ProviderUnavailable  # itself, not the earlier timeout
