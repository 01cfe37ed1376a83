"""Extension objects, created unbound; create_app() binds them."""
from __future__ import annotations

from flask_migrate import Migrate

migrate = Migrate(render_as_batch=True, compare_type=True)
