"""Command-line options that hold a dict, parsed as literals only."""
import ast


def parse_dict_option(text: str, option: str) -> dict:
    """``dict(a=1, b=(2, 3))`` or ``{'a': 1}`` → a dict, literals only: a
    command-line option is never evaluated as code (``eval`` would run
    ``__import__('os').system(...)``).

    Raises:
        ValueError: naming ``option`` when ``text`` is not such a dict.
    """
    try:
        node = ast.parse(text.strip(), mode='eval').body
        if isinstance(node, ast.Call) and getattr(node.func, 'id',
                                                  None) == 'dict':
            if node.args or any(kw.arg is None for kw in node.keywords):
                raise ValueError('only keyword arguments are allowed')
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        value = ast.literal_eval(node)
        if not isinstance(value, dict):
            raise ValueError(f'got a {type(value).__name__}')
        return value
    except (SyntaxError, ValueError, TypeError) as e:
        raise ValueError(f'{option} {text!r}: expected dict(key=literal, ...) '
                         f'or {{...}} of literals ({e})') from e
