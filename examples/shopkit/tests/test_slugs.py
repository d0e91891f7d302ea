from shopkit import slugs


def test_slugify_basic():
    assert slugs.slugify("Blue Mug (Large)") == "blue-mug-large"


def test_unique_slug_suffix():
    assert slugs.unique_slug("Mug", {"mug", "mug-2"}) == "mug-3"
