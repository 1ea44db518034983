import pytest

import lakecore
from lakecore import errors

BUILTIN = {
    "NotFoundError": KeyError,
    "AlreadyExistsError": FileExistsError,
    "SchemaError": TypeError,
    "ValidationError": ValueError,
    "ConflictError": RuntimeError,
    "IntegrityError": ValueError,
    "ReadOnlyError": PermissionError,
    "StorageError": OSError,
}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_each_error_is_a_lake_error_and_its_builtin(name):
    cls = getattr(lakecore, name)
    assert cls is getattr(errors, name)
    assert issubclass(cls, lakecore.LakeError)
    assert issubclass(cls, BUILTIN[name])
    with pytest.raises(BUILTIN[name]):
        raise cls("boom")


def test_not_found_message_is_not_quoted():
    assert str(lakecore.NotFoundError("feature group 'x' not found")) == "feature group 'x' not found"


def test_public_names_are_exactly_the_contract_and_helpers():
    assert set(errors.__all__) == {"LakeError", *BUILTIN}
    assert {"asof_join", "LakeError", *BUILTIN} <= set(lakecore.__all__)
