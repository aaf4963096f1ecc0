"""Distributed engines. Each engine wraps its framework in one module, imported only when
a command asks for it (`--engine ray`): the local engine never imports Ray."""
