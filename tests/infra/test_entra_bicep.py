"""The Entra ID app registration (entra.bicep, Microsoft Graph), asserted on the parsed tree: the
app roles are the ones the front door maps to scopes, any principal kind may hold them, the
Azure CLI may ask for a token without a consent prompt, only assigned principals get tokens, and
the only role assignment is the operator's. checkov does not read this file (see
test_checkov.py), so these assertions are its only offline check besides parsing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.core.entra import ROLE_PUBLISH, ROLE_READ
from tests.infra import bicep

ENTRA = bicep.parse(bicep.ENTRA)
MAIN = bicep.parse(bicep.MAIN)
APPLICATION = "Microsoft.Graph/applications"
SERVICE_PRINCIPAL = "Microsoft.Graph/servicePrincipals"
ASSIGNMENT = "Microsoft.Graph/appRoleAssignedTo"

# Microsoft's public clients (first-party app ids, the same in every tenant) that
# DefaultAzureCredential signs in through on a workstation.
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
AZURE_POWERSHELL = "1950a258-227b-4e31-a9cf-717495945fc2"
VISUAL_STUDIO_CODE = "aebc6443-996d-45c2-90f0-388ff96faa56"


def app() -> bicep.Resource:
    return bicep.only(ENTRA, APPLICATION)


def service_principal() -> bicep.Resource:
    return bicep.only(ENTRA, SERVICE_PRINCIPAL)


def app_roles() -> dict[str, dict[str, Any]]:
    """The app's roles by value (the `roles` claim the front door reads)."""
    roles = {bicep.resolve(ENTRA, role["value"]): role for role in app().body["appRoles"]}
    assert len(roles) == len(app().body["appRoles"]), "two roles with one value"
    return roles


def guid_parts(node: Any) -> list[Any]:
    """The arguments of a guid(...) call: variables by their values, parameters by name."""
    call = bicep.function(bicep.resolve(ENTRA, node))
    assert call is not None
    assert call[0] == "guid"
    variables = ENTRA["variables"]
    return [bicep.resolve(ENTRA, v) if v in variables else v for v in call[1].values()]


def scope() -> dict[str, Any]:
    (only,) = bicep.dig(app().body, "api.oauth2PermissionScopes")
    assert isinstance(only, dict)
    return only


def module() -> dict[str, Any]:
    """main.bicep's `entraApp` module: its condition and its config."""
    raw = MAIN["modules"]["entraApp"]["config"]
    return {"condition": raw["condition"], **raw["config"]}


# --- the registration -------------------------------------------------------------------------


def test_the_app_is_a_single_tenant_api_named_by_its_unique_name() -> None:
    body = app().body
    assert body["uniqueName"] == "appName"  # required: Graph Bicep upserts by it
    assert body["signInAudience"] == "AzureADMyOrg"
    assert body["identifierUris"] == ["identifierUri"]


def test_the_application_id_uri_is_a_form_the_default_restrictions_accept() -> None:
    """api://{tenantId}/{string} names the tenant, as Entra's identifier URI rules require."""
    uri = bicep.resolve(ENTRA, "identifierUri")
    assert uri == "api://${tenant().tenantId}/${appName}"
    example = uri.replace("${tenant().tenantId}", "0" * 8 + "-0000-0000-0000-" + "0" * 12)
    example = example.replace("${appName}", "wheelvault-abc")
    assert re.fullmatch(r"api://[0-9a-f-]{36}/[a-z0-9-]+", example)


def test_main_bicep_names_the_app_uniquely_per_deployment() -> None:
    params = module()["params"]
    assert params["appName"] == "wheelvault-${suffix}"
    bounds = bicep.decorators(ENTRA, "parameters", "appName")
    assert bounds["min_length"] >= 1


def test_the_roles_are_the_ones_the_front_door_maps_to_scopes() -> None:
    assert set(app_roles()) == {ROLE_READ, ROLE_PUBLISH}


@pytest.mark.parametrize("value", [ROLE_READ, ROLE_PUBLISH])
def test_users_groups_and_applications_may_hold_each_role(value: str) -> None:
    """User covers users and groups; Application covers managed identities and service
    principals."""
    role = app_roles()[value]
    assert sorted(role["allowedMemberTypes"]) == ["Application", "User"]
    assert role["isEnabled"] is True
    assert len(str(role["description"])) > 10


def test_role_ids_are_stable_and_distinct() -> None:
    """guid(appName, value): redeploying keeps each id (a changed id would delete the role)."""
    ids = [role["id"] for role in app_roles().values()]
    for value, role in app_roles().items():
        assert guid_parts(role["id"]) == ["appName", value]
    assert len(set(map(str, ids))) == 2


def test_access_tokens_are_v2() -> None:
    """v2 tokens carry the client id as `aud` (WHEELVAULT_ENTRA_AUDIENCE lists it)."""
    assert bicep.dig(app().body, "api.requestedAccessTokenVersion") == 2


def test_one_delegated_scope_that_only_an_admin_may_consent_to() -> None:
    exposed = scope()
    assert bicep.resolve(ENTRA, exposed["value"]) == "user_impersonation"
    assert exposed["type"] == "Admin"
    assert exposed["isEnabled"] is True
    assert guid_parts(exposed["id"]) == ["appName", "user_impersonation"]


def test_microsofts_sign_in_tools_are_pre_authorized_for_that_scope() -> None:
    """`az account get-access-token --scope api://…/.default` (and AzureCliCredential) needs no
    consent prompt; the clients get nothing but that scope."""
    pre_authorized = bicep.dig(app().body, "api.preAuthorizedApplications")
    clients = {}
    for entry in pre_authorized:
        clients[bicep.resolve(ENTRA, entry["appId"])] = entry["delegatedPermissionIds"]
    assert set(clients) == {AZURE_CLI, AZURE_POWERSHELL, VISUAL_STUDIO_CODE}
    for granted in clients.values():
        assert granted == [scope()["id"]]


def test_the_deployer_owns_the_app_and_its_service_principal() -> None:
    """So the next deployment, or a service principal with Application.ReadWrite.OwnedBy, may
    update them."""
    owner = bicep.resolve(ENTRA, "owner")
    assert bicep.function(bicep.dig(owner, "operator.operands.operand_1")) == ("deployer", {})
    for resource in (app(), service_principal()):
        assert resource.body["owners"] == {"relationships": ["owner"]}, resource.name


# --- the service principal and the assignment ---------------------------------------------------


def test_only_assigned_principals_get_tokens() -> None:
    body = service_principal().body
    assert bicep.reference(body["appId"]) == f"{app().name}.appId"
    assert body["appRoleAssignmentRequired"] is True


def test_the_only_assignment_is_publish_for_the_optional_operator() -> None:
    """No role for the function app's identity: it checks signatures with the tenant's public
    keys, fetched without credentials."""
    (assignment,) = bicep.resources(ENTRA, ASSIGNMENT).values()
    body = assignment.body
    assert body["appRoleId"] == "publishRoleId"
    assert app_roles()[ROLE_PUBLISH]["id"] == "publishRoleId"
    assert body["principalId"] == "publisherPrincipalId"
    assert bicep.reference(body["resourceId"]) == f"{service_principal().name}.id"
    assert bicep.dig(assignment.condition, "operator.type") == "not"
    tested = bicep.function(bicep.dig(assignment.condition, "operator.operands.bool_value"))
    assert tested == ("empty", {"item_to_test": "publisherPrincipalId"})
    assert bicep.resolve(ENTRA, "publisherPrincipalId") == ""


def test_main_bicep_makes_the_operator_the_publisher() -> None:
    assert module()["params"]["publisherPrincipalId"] == "adminPrincipalId"


def test_the_graph_module_grants_the_function_apps_identity_nothing() -> None:
    """Nothing about the app's managed identity reaches entra.bicep."""
    passed = " ".join(str(v) for v in module()["params"].values())
    assert "identity" not in passed


# --- turning it off ----------------------------------------------------------------------------


def test_the_registration_is_on_by_default_and_can_be_turned_off() -> None:
    assert module()["condition"] == "entraAppRegistration"
    assert bicep.resolve(MAIN, "entraAppRegistration") is True
    assert MAIN["parameters"]["entraAppRegistration"]["type"] == "bool"
    for name in ("entraExistingAudience", "entraExistingTenantId"):
        assert bicep.resolve(MAIN, name) == "", name


# --- outputs -----------------------------------------------------------------------------------


def test_the_module_outputs_the_scope_clients_ask_for() -> None:
    outputs = ENTRA["outputs"]
    assert outputs["scope"]["value"] == "${identifierUri}/.default"
    assert bicep.reference(outputs["clientId"]["value"]) == f"{app().name}.appId"
    assert outputs["identifierUri"]["value"] == "identifierUri"
    assert bicep.reference(outputs["servicePrincipalId"]["value"]) == (
        f"{service_principal().name}.id"
    )


MAIN_OUTPUTS = {
    "ENTRA_CLIENT_ID": "clientId",
    "ENTRA_APP_ID_URI": "identifierUri",
    "ENTRA_SCOPE": "scope",
    "ENTRA_SERVICE_PRINCIPAL_ID": "servicePrincipalId",
    "ENTRA_ROLE_READ_ID": "readRoleId",
    "ENTRA_ROLE_PUBLISH_ID": "publishRoleId",
}


@pytest.mark.parametrize(("name", "output"), sorted(MAIN_OUTPUTS.items()))
def test_main_bicep_passes_each_module_output_on_or_empty(name: str, output: str) -> None:
    """azd keeps them in the environment; the README's commands read them."""
    assert output in ENTRA["outputs"]
    chosen = MAIN["outputs"][name]["value"]["operator"]
    assert chosen["type"] == "conditional"
    assert chosen["operands"]["condition"] == "entraAppRegistration"
    assert bicep.reference(chosen["operands"]["true_value"]) == f"entraApp.outputs.{output}"
    assert chosen["operands"]["false_value"] == ""
