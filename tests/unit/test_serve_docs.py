"""The API docs pages (/docs, /redoc) work offline: every script and stylesheet is local."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from palmerpenguins import load_penguins
from sklearn.dummy import DummyClassifier

from shipyard.data import ColumnSchema, Signature
from shipyard.registry import ModelPackage
from shipyard.serve import create_app

_ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)
_CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    frame = load_penguins().dropna()
    sig = Signature(
        inputs=(
            ColumnSchema(name="bill_length_mm", kind="number", dtype="float64", nullable=False),
        ),
        classes=tuple(sorted(frame["species"].unique())),
    )
    model = DummyClassifier().fit(frame[["bill_length_mm"]], frame["species"])
    return ModelPackage(pipeline=model, signature=sig, task="multiclass", metadata={})


@pytest.fixture(scope="module")
def client(package: ModelPackage) -> Iterator[TestClient]:
    with TestClient(create_app(package)) as c:
        yield c


def _assets(html: str) -> list[str]:
    return _ASSET.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_nothing_from_the_internet(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assets = _assets(html)
    assert any(a.endswith(".js") for a in assets), html
    remote = [a for a in assets if re.match(r"^(https?:)?//", a)]
    assert remote == [], f"{page} loads {remote} from the network"
    assert "fonts.googleapis.com" not in html
    assert "'/openapi.json'" in html or '"/openapi.json"' in html


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_assets_are_served(client: TestClient, page: str) -> None:
    for asset in _assets(client.get(page).text):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 1000, asset
        suffix = asset[asset.rfind(".") :]
        assert _CONTENT_TYPES[suffix] in response.headers["content-type"], asset


def test_swagger_ui_is_a_version_that_renders_openapi_3_1(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    (script,) = [a for a in _assets(client.get("/docs").text) if a.endswith(".js")]
    bundle = client.get(script).text
    assert "SwaggerUIBundle" in bundle
    assert re.search(r"\b5\.\d+\.\d+\b", bundle), "Swagger UI 4 cannot render OpenAPI 3.1"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_respect_the_root_path(package: ModelPackage, page: str) -> None:
    """Behind a proxy that mounts the server at /models/p the pages point under that prefix."""
    with TestClient(create_app(package), root_path="/models/p") as c:
        html = c.get(page).text
        assets = _assets(html)
        assert assets and all(a.startswith("/models/p/docs/") for a in assets), assets
        assert "/models/p/openapi.json" in html
        assert all(c.get(a).status_code == 200 for a in assets)


def test_unknown_asset_is_404_and_counted_under_one_route(client: TestClient) -> None:
    for name in ("nope.js", "other.css"):
        response = client.get(f"/docs/static/{name}")
        assert response.status_code == 404
    text = client.get("/metrics").text
    assert "nope.js" not in text and "other.css" not in text
    assert 'route="/docs/static/{path}",status="404"} 2.0' in text


def test_missing_assets_package_is_named(
    package: ModelPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.serve import _docs

    monkeypatch.setattr(_docs, "ASSETS_PACKAGE", ("no_such_docs_package", "static"))
    with pytest.raises(RuntimeError, match="install the 'no_such_docs_package' package"):
        create_app(package)
