import pytest

from mmstable.utils import parse_dict_option


def test_dict_call_and_braces_are_literals():
    assert parse_dict_option("dict(hidden_channels=2, size=(3, 4))",
                             '--refiner') == dict(hidden_channels=2,
                                                  size=(3, 4))
    assert parse_dict_option("{'a': 1.5}", '--refiner') == {'a': 1.5}
    assert parse_dict_option('{}', '--refiner') == {}


@pytest.mark.parametrize('text', [
    "__import__('os').system('touch x')",     # code, not a literal
    "dict(a=__import__('os').getcwd())",      # code inside dict(...)
    "dict(1, a=2)", "dict(**x)", "[1, 2]", "dict(a=", "foo(a=1)"])
def test_anything_else_is_refused_naming_the_option(text, tmp_path,
                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match='--refiner'):
        parse_dict_option(text, '--refiner')
    assert not (tmp_path / 'x').exists()
