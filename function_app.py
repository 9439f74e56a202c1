"""The Functions entry point: registers the blueprints. No settings, no I/O, no logic here."""

import azure.functions as func

from functions.frontdoor import bp as frontdoor_bp
from functions.publish import bp as publish_bp
from functions.rotate import bp as rotate_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(publish_bp)
app.register_functions(frontdoor_bp)
app.register_functions(rotate_bp)
