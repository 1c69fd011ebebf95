import time, pytest
from imagify.adapters.lambda_renderer import LambdaRenderer, make_lambda_client
from imagify.domain.errors import RenderFailed
from tests.integration.lambda_endpoint import lambda_endpoint, SLOW, FUNCTION  # noqa
from tests.integration.services import moto_server  # noqa

def test_probe(lambda_endpoint):
    c = make_lambda_client(lambda_endpoint, connect_timeout=1, read_timeout=1, max_attempts=1)
    for fn in (SLOW, SLOW, "nope", FUNCTION):
        t = time.monotonic()
        try:
            LambdaRenderer(c, fn, "some-bucket", "p").render("originals/x", "thumbnails/x/1", 1)
        except RenderFailed as e:
            print(round(time.monotonic()-t, 2), e.detail)
