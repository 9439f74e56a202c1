"""The code and the infrastructure agree.

- Every setting the code reads (the aliases of `shared.settings.Settings`, not a hand-kept
  list) is set in main.bicep and in local.settings.sample.json, except the stated exceptions.
- Every trigger's connection, and the host's own storage, is identity-based in Azure.
- Event Grid delivers BlobCreated events from the container the blob trigger watches to the
  webhook of the real Python blob-triggered function.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from devhost.standins.host.server import BODY_LIMIT_SETTING, body_limit
from shared.core import layout
from shared.services.upload_api import FORM_ROOM_BYTES, UploadApi
from shared.settings import STORAGE_CONNECTION, Settings
from tests.infra import bicep
from tests.support.functions import registered

MAIN = bicep.parse(bicep.MAIN)
EVENTGRID = bicep.parse(bicep.EVENTGRID)
SAMPLE = json.loads((bicep.ROOT / "local.settings.sample.json").read_text())["Values"]

# Settings the code reads that must never be set in Azure, and why.
LOCAL_ONLY = {
    STORAGE_CONNECTION: "a connection string carries an account key, and the storage account "
    "has shared keys disabled; Azure uses the identity-based form below instead",
    "WHEELVAULT_STORAGE_API_VERSION": "pins the Blob REST API version Azurite understands; "
    "against Azure the SDK's own version is right",
    "WHEELVAULT_VAULT_CA_BUNDLE": "trusts the local Key Vault stand-in's own CA; Key Vault has "
    "a publicly trusted certificate",
    "WHEELVAULT_ENTRA_CA_BUNDLE": "trusts the local Entra ID stand-in's own CA; Entra ID has "
    "a publicly trusted certificate",
}
# Settings only Azure sets: the identity-based form of the storage connection. The settings
# model accepts exactly one of the two forms, so the local sample has the connection string.
AZURE_ONLY = {
    f"{STORAGE_CONNECTION}__blobServiceUri",
    f"{STORAGE_CONNECTION}__credential",
    f"{STORAGE_CONNECTION}__clientId",
}
# Values known only at deployment that must have a shape of their own, not a URL's.
PLACEHOLDERS = {"WHEELVAULT_ENTRA_TENANT_ID": "00000000-0000-0000-0000-000000000000"}
HOST_STORAGE = "AzureWebJobsStorage"
# UploadApi.max_request_bytes needs no publisher: only the cap goes into it.
_NO_PUBLISHER: Any = None
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"


def app_settings() -> dict[str, Any]:
    return bicep.app_settings(MAIN)


def code_settings() -> set[str]:
    """Every setting name the code reads: the aliases of the settings model's fields."""
    return {field.alias or name for name, field in Settings.model_fields.items()}


def bindings() -> list[tuple[str, dict[str, Any]]]:
    """(function name, binding as in function.json) for every binding of every function."""
    return [
        (name, binding.get_dict_repr())
        for name, function in registered().items()
        for binding in function.get_bindings()
    ]


def trigger_connections() -> set[str]:
    """The `connection` of every binding (the app setting prefix the host resolves)."""
    return {str(b["connection"]) for _, b in bindings() if b.get("connection")}


def event_grid_blob_functions() -> dict[str, str]:
    """Blob-triggered functions fed by Event Grid, by name, with their blob path."""
    return {
        name: str(b["path"])
        for name, b in bindings()
        if b["type"] == "blobTrigger" and b.get("source") == "EventGrid"
    }


def subscription() -> bicep.Resource:
    """The one Event Grid subscription eventgrid.bicep creates."""
    return bicep.only(EVENTGRID, "Microsoft.EventGrid/systemTopics/eventSubscriptions")


# --- settings ---------------------------------------------------------------------------------


def test_the_exceptions_are_settings_the_code_reads() -> None:
    assert set(LOCAL_ONLY) | AZURE_ONLY <= code_settings()


def test_every_setting_the_code_reads_is_set_in_bicep() -> None:
    missing = code_settings() - set(LOCAL_ONLY) - set(app_settings())
    assert not missing


def test_local_only_settings_are_absent_from_bicep() -> None:
    assert not set(LOCAL_ONLY) & set(app_settings())
    keys = {k for node in bicep.walk(MAIN) if isinstance(node, dict) for k in node}
    assert not set(LOCAL_ONLY) & keys, "a local-only setting appears somewhere in main.bicep"


def test_every_setting_the_code_reads_is_in_the_local_sample() -> None:
    missing = code_settings() - AZURE_ONLY - set(SAMPLE)
    assert not missing


def test_the_local_sample_uses_the_connection_string_form() -> None:
    assert STORAGE_CONNECTION in SAMPLE
    assert not AZURE_ONLY & set(SAMPLE)


def test_bicep_sets_no_wheelvault_setting_the_code_or_host_does_not_read() -> None:
    """Catches typos: a misspelt name would be set, ignored, and the default used."""
    host_extras = {f"{c}__queueServiceUri" for c in trigger_connections()}
    unknown = {k for k in app_settings() if k.startswith("WHEELVAULT_")}
    assert not unknown - code_settings() - host_extras


# The settings main.bicep gives the Functions host and the platform rather than wheelvault, each
# by the name Microsoft documents (identity-based AzureWebJobsStorage, the request body limit,
# Application Insights with Entra ID auth).
HOST_SETTINGS = {
    f"{HOST_STORAGE}__blobServiceUri",
    f"{HOST_STORAGE}__queueServiceUri",
    f"{HOST_STORAGE}__tableServiceUri",
    f"{HOST_STORAGE}__credential",
    f"{HOST_STORAGE}__clientId",
    "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}


def test_every_other_setting_is_one_the_host_reads() -> None:
    """Catches typos in the host's settings too (a misspelt tableServiceUri is just ignored)."""
    others = {k for k in app_settings() if not k.startswith("WHEELVAULT_")}
    assert others == HOST_SETTINGS


def test_percent_settings_in_trigger_bindings_are_set_everywhere() -> None:
    """`%WHEELVAULT_ROTATION_SCHEDULE%` is resolved by the host: the setting must exist."""
    referenced = {
        match
        for _, binding in bindings()
        for value in binding.values()
        for match in re.findall(r"%([A-Za-z0-9_]+)%", str(value))
    }
    assert referenced, "expected the timer schedule to be read from a setting"
    assert referenced <= set(app_settings())
    assert referenced <= set(SAMPLE)


def default_value(node: Any) -> Any:
    """What a setting's expression gives with every parameter at its default, where that is
    known before deployment: literals, variables, parameters and `string(...)`. Else None."""
    call = bicep.function(node)
    if call is not None:
        kind, args = call
        inner = default_value(args["value_to_convert"]) if kind == "string" else None
        return None if inner is None else str(inner)
    if isinstance(node, int):
        return node
    if not isinstance(node, str):
        return None  # a property of a deployed resource, an operator, ...
    value = bicep.resolve(MAIN, node)
    if value is not node:
        return default_value(value)
    return None if "${" in node else node  # an interpolation is known only at deployment


def test_bicep_defaults_are_settings_the_code_accepts() -> None:
    """With the parameters at their defaults, the app settings load into the settings model
    (values known only at deployment, such as endpoints, get a placeholder)."""
    values = {k: default_value(v) for k, v in app_settings().items() if k in code_settings()}
    known = {k: v for k, v in values.items() if v is not None}
    assert {"WHEELVAULT_ROTATION_SCHEDULE", "WHEELVAULT_SAS_EXPIRY_SECONDS"} <= set(known)
    placeholders = {
        k: PLACEHOLDERS.get(k, "https://example.invalid/") for k, v in values.items() if v is None
    }
    Settings.model_validate(placeholders | known)


def test_bicep_parameter_bounds_are_those_of_the_settings_model() -> None:
    """A number Azure accepts at deployment is one the code accepts at run time."""
    checked = 0
    for alias, value in app_settings().items():
        call = bicep.function(value)
        if call is None or call[0] != "string" or alias not in code_settings():
            continue
        parameter = call[1]["value_to_convert"]
        bounds = bicep.decorators(MAIN, "parameters", parameter)
        (field,) = (f for f in Settings.model_fields.values() if f.alias == alias)
        limits = {
            k: getattr(m, k) for m in field.metadata for k in ("gt", "ge", "le") if hasattr(m, k)
        }
        lowest = limits["ge"] if "ge" in limits else limits["gt"] + 1
        assert bounds.get("min_value") == lowest, alias
        assert bounds.get("max_value") == limits["le"], alias
        checked += 1
    assert checked == 6


# --- connections ------------------------------------------------------------------------------


@pytest.mark.parametrize("connection", sorted(trigger_connections() | {HOST_STORAGE}))
def test_connection_is_identity_based(connection: str) -> None:
    """Blob and queue endpoints, the managed identity and its client id; no connection string."""
    settings = app_settings()
    assert connection not in settings, f"{connection} would be a connection string"
    for service in ("blob", "queue"):
        value = settings[f"{connection}__{service}ServiceUri"]
        assert bicep.reference(value) == f"storage.properties.primaryEndpoints.{service}"
    assert settings[f"{connection}__credential"] == "managedidentity"
    assert bicep.reference(settings[f"{connection}__clientId"]) == "identity.properties.clientId"


def test_the_host_writes_diagnostic_events_to_tables_as_the_identity() -> None:
    """Without a table endpoint and role the host's diagnostic events are lost (a warning)."""
    value = app_settings()[f"{HOST_STORAGE}__tableServiceUri"]
    assert bicep.reference(value) == "storage.properties.primaryEndpoints.table"


def test_the_vault_is_reached_with_the_same_identity() -> None:
    settings = app_settings()
    assert bicep.reference(settings["WHEELVAULT_VAULT_URL"]) == "vault.properties.vaultUri"
    assert settings["WHEELVAULT_VAULT_CREDENTIAL"] == "managedidentity"
    assert bicep.reference(settings["WHEELVAULT_VAULT_CLIENT_ID"]) == "identity.properties.clientId"


VAULT_REFERENCE = "@Microsoft.KeyVault(VaultName=kv-wv-abc;SecretName=wvupstream-urls)"


def upstream_urls(secret: str, public_index: bool) -> str:
    """WHEELVAULT_UPSTREAM_URLS as main.bicep sets it for these two parameters."""
    given = {
        "upstreamUrlsSecretName": secret,
        "upstreamPublicIndex": public_index,
        "vault.name": "kv-wv-abc",
    }
    return str(bicep.evaluate(MAIN, app_settings()["WHEELVAULT_UPSTREAM_URLS"], given))


@pytest.mark.parametrize(
    ("secret", "public_index", "expected"),
    [
        ("", False, ""),  # no upstream
        ("", True, "https://pypi.org/simple/"),  # the public index, no secret needed
        ("wvupstream-urls", False, VAULT_REFERENCE),
        ("wvupstream-urls", True, VAULT_REFERENCE),  # the secret wins: it may list pypi too
    ],
    ids=["none", "public-index", "secret", "secret-and-public-index"],
)
def test_upstream_urls_are_a_key_vault_reference_the_public_index_or_empty(
    secret: str, public_index: bool, expected: str
) -> None:
    """URLs that may hold credentials only ever come from the vault, resolved as the identity."""
    assert upstream_urls(secret, public_index) == expected
    assert bicep.resolve(MAIN, "upstreamPublicIndex") is False
    app = bicep.resources(MAIN)["functionApp"]
    assert bicep.reference(app.properties["keyVaultReferenceIdentity"]) == "identity.id"


def test_the_public_index_option_loads_as_that_one_upstream() -> None:
    values = {"WHEELVAULT_UPSTREAM_URLS": upstream_urls("", public_index=True)}
    assert loaded(values).upstream_base_urls == ("https://pypi.org/simple/",)
    assert loaded({"WHEELVAULT_UPSTREAM_URLS": upstream_urls("", False)}).upstream_base_urls == ()


# --- the host's request body limit --------------------------------------------------------------


@pytest.mark.parametrize("bound", ["default", "max_value"])
def test_the_hosts_body_limit_lets_a_file_at_the_cap_through_the_upload_api(bound: str) -> None:
    """FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (the host refuses larger bodies before the function
    runs) is exactly the upload API's own limit for WHEELVAULT_MAX_UPLOAD_BYTES."""
    parameter = MAIN["parameters"]["maxUploadBytes"]
    cap = (
        parameter["default"]
        if bound == "default"
        else bicep.decorators(MAIN, "parameters", "maxUploadBytes")["max_value"]
    )
    limit = bicep.evaluate(
        MAIN, app_settings()["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"], {"maxUploadBytes": cap}
    )
    assert bicep.resolve(MAIN, "uploadFormRoomBytes") == FORM_ROOM_BYTES
    assert limit == str(UploadApi(_NO_PUBLISHER, max_upload_bytes=cap).max_request_bytes)
    assert body_limit({BODY_LIMIT_SETTING: limit}) == int(limit)  # the local host reads it too


def test_public_url_defaults_to_the_app_url_or_takes_the_custom_one() -> None:
    assert bicep.reference(app_settings()["WHEELVAULT_PUBLIC_URL"]) == "publicBaseUrl"
    chosen = bicep.resolve(MAIN, "publicBaseUrl")["operator"]
    assert chosen["type"] == "conditional"
    assert bicep.function(chosen["operands"]["condition"]) == (
        "empty",
        {"item_to_test": "publicUrl"},
    )
    assert chosen["operands"]["true_value"] == "functionUrl"
    assert chosen["operands"]["false_value"] == "publicUrl"


# --- entra id sign-in ---------------------------------------------------------------------------

ENTRA_SETTINGS = (
    "WHEELVAULT_ENTRA_TENANT_ID",
    "WHEELVAULT_ENTRA_AUDIENCE",
    "WHEELVAULT_ENTRA_AUTHORITY",
)
TENANT = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
OTHER_TENANT = "a1b2c3d4-0000-4000-8000-000000000001"
CLIENT_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
APP_ID_URI = f"api://{TENANT}/wheelvault-abc"
PUBLIC_LOGIN = "https://login.microsoftonline.com/"
CHINA_LOGIN = "https://login.chinacloudapi.cn/"
# What the deployment-time expressions in the Entra settings give.
DEPLOYED = {
    "tenant().tenantId": TENANT,
    "entraApp.outputs.identifierUri": APP_ID_URI,
    "entraApp.outputs.clientId": CLIENT_ID,
    "environment().authentication.loginEndpoint": PUBLIC_LOGIN,
}
EXISTING = "api://contoso.com/packages,5e6f7a8b-1111-4222-8333-944455556666"


def entra_settings(given: dict[str, Any]) -> dict[str, str]:
    """The three Entra settings main.bicep sets, with the parameters and values given."""
    settings = app_settings()
    return {name: bicep.evaluate(MAIN, settings[name], DEPLOYED | given) for name in ENTRA_SETTINGS}


def loaded(values: dict[str, str]) -> Settings:
    """The settings model over main.bicep's defaults with these values. An empty app setting is
    an unset one (the model ignores empty environment variables), so empty values are dropped."""
    assert Settings.model_config.get("env_ignore_empty") is True
    known = {k: default_value(v) for k, v in app_settings().items() if k in code_settings()}
    base = {k: v for k, v in known.items() if v is not None and k not in ENTRA_SETTINGS}
    required = {"WHEELVAULT_STORAGE__blobServiceUri": "https://example.invalid/"}
    return Settings.model_validate(required | base | {k: v for k, v in values.items() if v})


def test_the_registration_turns_entra_sign_in_on_for_its_app_in_this_tenant() -> None:
    config = loaded(entra_settings({})).entra
    assert config is not None
    assert config.tenant_id == TENANT
    assert config.audiences == (APP_ID_URI, CLIENT_ID)  # v1 tokens carry the URI, v2 the id
    assert config.authority == "https://login.microsoftonline.com"


def test_without_the_registration_or_an_existing_audience_entra_sign_in_is_off() -> None:
    values = entra_settings({"entraAppRegistration": False})
    assert values["WHEELVAULT_ENTRA_TENANT_ID"] == values["WHEELVAULT_ENTRA_AUDIENCE"] == ""
    assert loaded(values).entra is None


@pytest.mark.parametrize(("tenant", "expected"), [("", TENANT), (OTHER_TENANT, OTHER_TENANT)])
def test_an_existing_registration_is_used_as_given(tenant: str, expected: str) -> None:
    given = {
        "entraAppRegistration": False,
        "entraExistingAudience": EXISTING,
        "entraExistingTenantId": tenant,
    }
    config = loaded(entra_settings(given)).entra
    assert config is not None
    assert config.tenant_id == expected
    assert ",".join(config.audiences) == EXISTING


def test_the_authority_is_the_clouds_sign_in_endpoint() -> None:
    """environment() differs in sovereign clouds; its trailing slash is not part of the setting."""
    values = entra_settings({"environment().authentication.loginEndpoint": CHINA_LOGIN})
    assert values["WHEELVAULT_ENTRA_AUTHORITY"] == "https://login.chinacloudapi.cn"
    config = loaded(values).entra
    assert config is not None
    assert config.v2_metadata_url == (
        f"https://login.chinacloudapi.cn/{TENANT}/v2.0/.well-known/openid-configuration"
    )


# --- containers -------------------------------------------------------------------------------


def container_names() -> set[str]:
    return {bicep.resolve(MAIN, r.body["name"]) for r in bicep.resources(MAIN, CONTAINER).values()}


def test_the_apps_containers_are_deployed() -> None:
    assert set(layout.CONTAINERS) <= container_names()


def test_every_blob_trigger_watches_a_deployed_container() -> None:
    paths = [b["path"] for _, b in bindings() if b["type"] == "blobTrigger"]
    assert paths
    for path in paths:
        assert str(path).split("/")[0] in container_names(), path


# --- event grid -------------------------------------------------------------------------------


def test_exactly_one_function_is_fed_by_event_grid_and_eventgrid_bicep_names_it() -> None:
    functions = event_grid_blob_functions()
    assert list(functions) == [bicep.resolve(EVENTGRID, "functionName")]


def test_subscription_name_is_valid_for_event_grid() -> None:
    """3 to 64 letters, digits and hyphens; a Python function name may hold underscores."""
    call = bicep.function(subscription().body["name"])
    assert call is not None
    kind, args = call
    assert kind == "replace"
    function_name = bicep.resolve(EVENTGRID, "functionName")
    name = args["original_string"].replace("${functionName}", function_name)
    name = name.replace(args["old_string"], args["new_string"])
    assert re.fullmatch(r"[A-Za-z0-9-]{3,64}", name), name


def test_events_are_delivered_to_the_blob_extension_webhook_of_that_function() -> None:
    destination = subscription().properties["destination"]
    assert destination["endpointType"] == "WebHook"
    assert destination["properties"]["endpointUrl"] == (
        "https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs"
        "?functionName=Host.Functions.${functionName}&code=${blobsExtensionKey}"
    )


def test_the_webhook_key_is_the_blob_extension_system_key_of_that_apps_host() -> None:
    host = bicep.resources(EVENTGRID)["appHost"]
    assert host.existing
    assert host.type == "Microsoft.Web/sites/host"
    assert host.body == {"parent": "functionApp", "name": "default"}
    key = bicep.resolve(EVENTGRID, "blobsExtensionKey")
    assert bicep.dig(key, "operator.type") == "property_accessor"
    operands = key["operator"]["operands"]
    assert bicep.dig(operands["operand_1"], "operator") == {
        "type": "function_accessor",
        "operands": {"operand_1": "appHost", "func_name": "listKeys"},
    }
    assert bicep.reference(operands["operand_2"]) == "systemKeys.blobs_extension"


def test_only_blob_created_events_from_the_watched_container() -> None:
    (path,) = event_grid_blob_functions().values()
    container = path.split("/")[0]
    assert container == layout.UPLOADS
    assert bicep.resolve(EVENTGRID, "uploadsContainerName") == container
    event_filter = subscription().properties["filter"]
    assert event_filter["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert event_filter["subjectBeginsWith"] == (
        "/blobServices/default/containers/${uploadsContainerName}/"
    )


def test_delivery_is_retried_then_dead_lettered_with_the_topics_identity() -> None:
    props = subscription().properties
    retry = props["retryPolicy"]
    assert bicep.resolve(EVENTGRID, retry["maxDeliveryAttempts"]) == 30
    assert bicep.resolve(EVENTGRID, retry["eventTimeToLiveInMinutes"]) == 1440
    dead_letter = props["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    destination = dead_letter["deadLetterDestination"]
    assert destination["endpointType"] == "StorageBlob"
    assert bicep.reference(destination["properties"]["resourceId"]) == "storage.id"
    container = bicep.resolve(EVENTGRID, destination["properties"]["blobContainerName"])
    assert container == bicep.resolve(MAIN, "deadLetterContainerName")


def test_eventgrid_bicep_reads_the_resources_main_bicep_creates() -> None:
    for name in ("functionApp", "storage", "systemTopic"):
        existing = bicep.resources(EVENTGRID)[name]
        created = bicep.resources(MAIN)[name]
        assert existing.existing, name
        assert not created.existing, name
        assert existing.type == created.type, name
    assert subscription().body["parent"] == "systemTopic"


# Each required parameter of eventgrid.bicep, and the main.bicep output that supplies it.
EVENTGRID_INPUTS = {
    "functionAppName": "AZURE_FUNCTION_APP_NAME",
    "storageAccountName": "STORAGE_ACCOUNT_NAME",
    "systemTopicName": "EVENT_GRID_SYSTEM_TOPIC_NAME",
}


def test_eventgrid_bicep_inputs_are_main_bicep_outputs() -> None:
    required = {n for n, p in EVENTGRID["parameters"].items() if p["default"] is None}
    assert required == set(EVENTGRID_INPUTS)
    assert set(EVENTGRID_INPUTS.values()) <= set(MAIN["outputs"])


def test_eventgrid_sh_passes_every_input_from_main_biceps_outputs() -> None:
    script = (bicep.INFRA / "eventgrid.sh").read_text()
    for parameter, output in EVENTGRID_INPUTS.items():
        assert f"{parameter}=" in script, parameter
        assert f"${{{output}:?" in script, output
