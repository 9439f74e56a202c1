"""What main.bicep deploys, asserted on the parsed tree: the security properties, the Flex
Consumption plan and runtime, and exactly the role assignments wheelvault needs."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.infra import bicep

TREE = bicep.parse(bicep.MAIN)
STORAGE_ACCOUNT = "Microsoft.Storage/storageAccounts"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"

# The only built-in roles wheelvault's template may assign, by definition id (the ids are the
# same in every tenant; see "Azure built-in roles" in the Azure RBAC documentation).
ALLOWED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": "Storage Blob Delegator",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}

# Every grant, as (who, role, on what). Who is the resource whose identity is granted, or the
# parameter holding a principal id; on what is the symbolic name of the scope resource.
EXPECTED_GRANTS = {
    # the function app's identity: the Functions host's two containers (locks, receipts; keys)
    ("identity", "Storage Blob Data Owner", "hostContainer"),
    ("identity", "Storage Blob Data Owner", "hostSecretsContainer"),
    # the platform writes the code package as this identity on a deploy, and reads it
    ("identity", "Storage Blob Data Contributor", "deploymentContainer"),
    # wheelvault's own data
    ("identity", "Storage Blob Data Contributor", "uploadsContainer"),
    ("identity", "Storage Blob Data Contributor", "indexContainer"),
    ("identity", "Storage Blob Data Contributor", "quarantineContainer"),
    # what only the account can carry: the user-delegation key, and the host's queues and
    # tables (named at run time)
    ("identity", "Storage Blob Delegator", "storage"),
    ("identity", "Storage Queue Data Contributor", "storage"),
    ("identity", "Storage Table Data Contributor", "storage"),
    ("identity", "Key Vault Secrets Officer", "vault"),  # read and rotate the tokens
    ("identity", "Monitoring Metrics Publisher", "appInsights"),  # telemetry with Entra auth
    # the Event Grid system topic, for dead-lettering with its own identity
    ("systemTopic", "Storage Blob Data Contributor", "deadLetterContainer"),
    # optional principals, each only when its parameter is set
    ("publisherPrincipalId", "Storage Blob Data Contributor", "uploadsContainer"),
    ("adminPrincipalId", "Key Vault Secrets Officer", "vault"),
    ("adminPrincipalId", "Storage Blob Data Contributor", "uploadsContainer"),
    ("adminPrincipalId", "Storage Blob Data Contributor", "indexContainer"),
    ("adminPrincipalId", "Storage Blob Data Contributor", "quarantineContainer"),
}
# Blob data roles never sit on the whole account: the code package, the host's keys and the
# dead letters are each reachable only by who needs them.
BLOB_DATA_ROLES = {"Storage Blob Data Owner", "Storage Blob Data Contributor"}

# Site properties Flex Consumption does not support, which some regions reject (ARM error 51021)
# and others ignore: Microsoft's "Flex Consumption plan deprecations" (ftpsState, alwaysOn,
# use32BitWorkerProcess, the runtime *Version properties, functionAppScaleLimit,
# preWarmedInstanceCount, containerSize ...) and the rejection list Azure Verified Modules omits
# for FC1 sites; http20Enabled because the official Flex samples set no siteConfig at all.
FLEX_UNSUPPORTED_SITE_CONFIG = {
    "ftpsState",
    "http20Enabled",
    "alwaysOn",
    "use32BitWorkerProcess",
    "linuxFxVersion",
    "windowsFxVersion",
    "netFrameworkVersion",
    "phpVersion",
    "pythonVersion",
    "nodeVersion",
    "javaVersion",
    "javaContainer",
    "javaContainerVersion",
    "powerShellVersion",
    "preWarmedInstanceCount",
    "functionsRuntimeScaleMonitoringEnabled",
    "functionAppScaleLimit",
    "minimumElasticInstanceCount",
}
FLEX_UNSUPPORTED_SITE_PROPERTIES = {"containerSize", "isXenon", "hyperV", "reserved"}
# Flex Consumption's documented range for the maximum instance count.
FLEX_MAXIMUM_INSTANCES = (40, 1000)
OPTIONAL_PRINCIPALS = {"publisherPrincipalId", "adminPrincipalId"}

# App settings the Functions host ignores or refuses on Flex Consumption (runtime, version and
# scale are in functionAppConfig; the code package is in a blob container, not a file share),
# and the connection-string form of the host storage, which would need shared keys.
FLEX_DEPRECATED_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "AzureWebJobsStorage",
}


def app_settings() -> dict[str, Any]:
    return bicep.app_settings(TREE)


def grants() -> dict[tuple[str, str, str], bicep.Resource]:
    """Every role assignment as (who, role name, scope) -> the assignment."""
    found = {}
    for assignment in bicep.resources(TREE, ROLE_ASSIGNMENT).values():
        call = bicep.function(bicep.dig(assignment.properties, "roleDefinitionId"))
        assert call is not None, f"{assignment.name}: roleDefinitionId is not a function call"
        kind, args = call
        assert kind == "subscription_resource_id", assignment.name
        assert args["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        role_id = bicep.resolve(TREE, args["resource_name_1"])
        assert role_id in ALLOWED_ROLES, f"{assignment.name}: role {role_id} is not allowed"
        principal = bicep.reference(assignment.properties["principalId"])
        who = str(principal).split(".")[0]  # identity.properties.principalId -> identity
        key = (who, ALLOWED_ROLES[role_id], str(assignment.body["scope"]))
        assert key not in found, f"granted twice: {key}"
        found[key] = assignment
    return found


# --- storage ----------------------------------------------------------------------------------


def test_storage_has_no_shared_keys_and_no_public_blobs() -> None:
    props = bicep.only(TREE, STORAGE_ACCOUNT).properties
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["defaultToOAuthAuthentication"] is True
    assert props["allowCrossTenantReplication"] is False


def test_storage_takes_only_https_and_tls_1_2() -> None:
    props = bicep.only(TREE, STORAGE_ACCOUNT).properties
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True


def test_storage_replication_is_a_choice_with_a_geo_redundant_default() -> None:
    sku = bicep.dig(bicep.only(TREE, STORAGE_ACCOUNT).body, "sku.name")
    assert bicep.resolve(TREE, sku) == "Standard_GRS"
    assert "Standard_LRS" in bicep.decorators(TREE, "parameters", sku)["allowed"]


def test_blob_soft_delete_container_soft_delete_and_versioning_are_on() -> None:
    service = bicep.only(TREE, "Microsoft.Storage/storageAccounts/blobServices")
    assert service.body["parent"] == bicep.only(TREE, STORAGE_ACCOUNT).name
    props = service.properties
    assert props["isVersioningEnabled"] is True
    for policy in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
        assert props[policy]["enabled"] is True, policy
        assert props[policy]["days"] >= 7, policy


def test_containers_are_private_children_of_the_blob_service() -> None:
    service = bicep.only(TREE, "Microsoft.Storage/storageAccounts/blobServices").name
    for container in bicep.resources(TREE, CONTAINER).values():
        assert container.body["parent"] == service, container.name
        assert container.properties["publicAccess"] == "None", container.name


def test_containers_are_the_apps_plus_deployment_and_dead_letter() -> None:
    names = {
        r.name: bicep.resolve(TREE, r.body["name"])
        for r in bicep.resources(TREE, CONTAINER).values()
    }
    assert names == {
        "uploadsContainer": "uploads",
        "indexContainer": "index",
        "quarantineContainer": "quarantine",
        "deploymentContainer": "app-package",
        "deadLetterContainer": "eventgrid-deadletter",
        "hostContainer": "azure-webjobs-hosts",
        "hostSecretsContainer": "azure-webjobs-secrets",
    }


def test_old_blob_versions_are_deleted_after_old_version_days() -> None:
    """Versioning plus rewritten pages would keep every old page forever; the rule bounds that."""
    policy = bicep.only(TREE, "Microsoft.Storage/storageAccounts/managementPolicies")
    assert policy.body["parent"] == bicep.only(TREE, STORAGE_ACCOUNT).name
    assert policy.body["name"] == "default"  # the one name Azure accepts
    (rule,) = bicep.dig(policy.properties, "policy.rules")
    assert rule["enabled"] is True
    assert rule["type"] == "Lifecycle"
    assert rule["definition"]["actions"] == {
        "version": {"delete": {"daysAfterCreationGreaterThan": "oldVersionDays"}}
    }
    # Every container: the index's pages and records, the code package, the host's keys.
    assert rule["definition"]["filters"] == {"blobTypes": ["blockBlob"]}
    assert bicep.resolve(TREE, "oldVersionDays") == 7
    bounds = bicep.decorators(TREE, "parameters", "oldVersionDays")
    assert (bounds["min_value"], bounds["max_value"]) == (1, 365)


def test_a_version_the_rule_deletes_stays_recoverable_for_a_while() -> None:
    props = bicep.only(TREE, "Microsoft.Storage/storageAccounts/blobServices").properties
    assert props["deleteRetentionPolicy"] == {"enabled": True, "days": 7}


@pytest.mark.parametrize(
    ("type_", "pattern"),
    [
        (STORAGE_ACCOUNT, r"[a-z0-9]{3,24}"),
        ("Microsoft.KeyVault/vaults", r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]"),
    ],
    ids=["storage", "vault"],
)
def test_globally_unique_names_fit_their_rules(type_: str, pattern: str) -> None:
    """`prefix${suffix}`, where suffix is uniqueString(): 13 lowercase letters and digits."""
    lowered = bicep.function(bicep.resolve(TREE, "suffix"))
    assert lowered is not None
    assert lowered[0] == "to_lower"
    unique = bicep.function(lowered[1]["string_to_change"])
    assert unique is not None
    assert unique[0] == "unique_string"
    name = str(bicep.only(TREE, type_).body["name"]).replace("${suffix}", "a1" * 6 + "b")
    assert re.fullmatch(pattern, name), name


# --- key vault --------------------------------------------------------------------------------


def test_vault_can_be_recovered_after_azd_down() -> None:
    """The vault name is deterministic and purge protection keeps a deleted one for 90 days:
    `recover` brings it back under the same name; `default` stays the default."""
    props = bicep.only(TREE, "Microsoft.KeyVault/vaults").properties
    assert props["createMode"] == "vaultCreateMode"
    assert bicep.resolve(TREE, "vaultCreateMode") == "default"
    allowed = bicep.decorators(TREE, "parameters", "vaultCreateMode")["allowed"]
    assert allowed == ["default", "recover"]


def test_vault_uses_rbac_with_soft_delete_and_purge_protection() -> None:
    props = bicep.only(TREE, "Microsoft.KeyVault/vaults").properties
    assert props["enableRbacAuthorization"] is True
    assert "accessPolicies" not in props
    assert props["enableSoftDelete"] is True
    assert props["softDeleteRetentionInDays"] >= 7
    assert props["enablePurgeProtection"] is True


# --- function app -----------------------------------------------------------------------------


def test_plan_is_flex_consumption_on_linux() -> None:
    plan = bicep.only(TREE, "Microsoft.Web/serverfarms")
    assert plan.body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan.properties["reserved"] is True  # Linux


def test_app_is_a_linux_function_app_on_that_plan_over_https_only() -> None:
    app = bicep.only(TREE, "Microsoft.Web/sites")
    plan = bicep.only(TREE, "Microsoft.Web/serverfarms")
    assert app.body["kind"] == "functionapp,linux"
    assert bicep.reference(app.properties["serverFarmId"]) == f"{plan.name}.id"
    assert app.properties["httpsOnly"] is True
    assert app.properties["siteConfig"]["minTlsVersion"] == "1.2"


def test_site_sets_nothing_flex_consumption_rejects() -> None:
    """FTP is off through the publishing-credentials policy, not ftpsState."""
    app = bicep.only(TREE, "Microsoft.Web/sites")
    site_config = app.properties["siteConfig"]
    assert not set(site_config) & FLEX_UNSUPPORTED_SITE_CONFIG
    assert set(site_config) == {"minTlsVersion"}
    assert not set(app.properties) & FLEX_UNSUPPORTED_SITE_PROPERTIES


def test_app_runs_the_python_the_project_is_checked_with() -> None:
    """functionAppConfig.runtime is Python, at the version mypy checks (pyproject.toml)."""
    project = tomllib.loads((bicep.ROOT / "pyproject.toml").read_text())
    runtime = bicep.dig(bicep.only(TREE, "Microsoft.Web/sites").properties, "functionAppConfig")
    assert runtime["runtime"] == {
        "name": "python",
        "version": project["tool"]["mypy"]["python_version"],
    }


def test_app_scale_is_set_in_function_app_config() -> None:
    config = bicep.only(TREE, "Microsoft.Web/sites").properties["functionAppConfig"]
    scale = config["scaleAndConcurrency"]
    memory = bicep.decorators(TREE, "parameters", scale["instanceMemoryMB"])["allowed"]
    assert set(memory) <= {512, 2048, 4096}
    bounds = bicep.decorators(TREE, "parameters", scale["maximumInstanceCount"])
    assert (bounds["min_value"], bounds["max_value"]) == FLEX_MAXIMUM_INSTANCES
    lowest, highest = FLEX_MAXIMUM_INSTANCES
    assert lowest <= bicep.resolve(TREE, scale["maximumInstanceCount"]) <= highest


def test_code_package_is_read_from_the_deployment_container_with_the_identity() -> None:
    storage = bicep.dig(
        bicep.only(TREE, "Microsoft.Web/sites").properties, "functionAppConfig.deployment.storage"
    )
    assert storage["type"] == "blobContainer"
    assert (
        storage["value"] == "${storage.properties.primaryEndpoints.blob}${deploymentContainerName}"
    )
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    assert (
        bicep.reference(storage["authentication"]["userAssignedIdentityResourceId"])
        == "identity.id"
    )


def test_app_has_only_the_user_assigned_identity() -> None:
    identity = bicep.only(TREE, "Microsoft.Web/sites").body["identity"]
    assert identity["type"] == "UserAssigned"
    # The key is an interpolated string; pycep keeps its quotes.
    assert list(identity["userAssignedIdentities"]) == ["'${identity.id}'"]


def test_app_creates_its_deployment_container_and_roles_before_starting() -> None:
    """The first start reads the package and the host's storage as the identity."""
    depends = set(bicep.only(TREE, "Microsoft.Web/sites").body["dependsOn"])
    needed = {
        ("identity", "Storage Blob Data Contributor", "deploymentContainer"),
        ("identity", "Storage Blob Data Owner", "hostContainer"),
        ("identity", "Storage Blob Data Owner", "hostSecretsContainer"),
        ("identity", "Storage Queue Data Contributor", "storage"),
        ("identity", "Storage Table Data Contributor", "storage"),
    }
    assert {"deploymentContainer"} | {grants()[grant].name for grant in needed} <= depends


def test_no_flex_deprecated_app_settings() -> None:
    assert not set(app_settings()) & FLEX_DEPRECATED_SETTINGS
    assert "appSettings" not in bicep.only(TREE, "Microsoft.Web/sites").properties["siteConfig"]


def test_host_storage_is_identity_based() -> None:
    settings = app_settings()
    assert bicep.reference(settings["AzureWebJobsStorage__blobServiceUri"]) == (
        "storage.properties.primaryEndpoints.blob"
    )
    assert bicep.reference(settings["AzureWebJobsStorage__queueServiceUri"]) == (
        "storage.properties.primaryEndpoints.queue"
    )
    # Diagnostic events go to a table, with the table role on the account (see the grants).
    assert bicep.reference(settings["AzureWebJobsStorage__tableServiceUri"]) == (
        "storage.properties.primaryEndpoints.table"
    )
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert (
        bicep.reference(settings["AzureWebJobsStorage__clientId"]) == "identity.properties.clientId"
    )


def test_application_insights_takes_telemetry_only_through_the_identity() -> None:
    component = bicep.only(TREE, "Microsoft.Insights/components")
    workspace = bicep.only(TREE, "Microsoft.OperationalInsights/workspaces")
    assert component.properties["DisableLocalAuth"] is True
    assert bicep.reference(component.properties["WorkspaceResourceId"]) == f"{workspace.name}.id"
    settings = app_settings()
    assert bicep.reference(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == (
        f"{component.name}.properties.ConnectionString"
    )
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "ClientId=${identity.properties.clientId};Authorization=AAD"
    )


def test_basic_auth_publishing_is_off() -> None:
    policies = bicep.resources(TREE, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {p.body["name"]: p.properties["allow"] for p in policies.values()} == {
        "ftp": False,
        "scm": False,
    }


# --- roles ------------------------------------------------------------------------------------


def test_the_role_table_matches_the_allow_list() -> None:
    roles = bicep.resolve(TREE, "roles")
    assert set(roles.values()) <= set(ALLOWED_ROLES)


def test_role_assignments_are_exactly_the_expected_grants() -> None:
    assert set(grants()) == EXPECTED_GRANTS


def test_no_blob_data_role_covers_the_whole_account() -> None:
    """Only the user-delegation key, queues and tables are granted on the account."""
    on_account = {(who, role) for who, role, scope in grants() if scope == "storage"}
    assert not {role for _, role in on_account} & BLOB_DATA_ROLES
    assert on_account == {
        ("identity", "Storage Blob Delegator"),
        ("identity", "Storage Queue Data Contributor"),
        ("identity", "Storage Table Data Contributor"),
    }


def test_only_the_apps_identity_may_write_the_code_package() -> None:
    """The platform writes the package as the deployment storage identity; nobody else does."""
    writers = {who for who, _, scope in grants() if scope == "deploymentContainer"}
    assert writers == {"identity"}
    storage = bicep.dig(
        bicep.only(TREE, "Microsoft.Web/sites").properties, "functionAppConfig.deployment.storage"
    )
    assert bicep.reference(storage["authentication"]["userAssignedIdentityResourceId"]) == (
        "identity.id"
    )


@pytest.mark.parametrize("grant", sorted(EXPECTED_GRANTS), ids=lambda g: f"{g[0]}-{g[1]}-{g[2]}")
def test_each_grant_is_deterministic_and_typed(grant: tuple[str, str, str]) -> None:
    """Named by guid(scope, principal, role), so redeploying never duplicates it."""
    assignment = grants()[grant]
    call = bicep.function(assignment.body["name"])
    assert call is not None, assignment.name
    assert call[0] == "guid", assignment.name
    parts = [bicep.reference(v) for v in call[1].values() if v is not None]
    scope = str(assignment.body["scope"])
    assert parts[0] == f"{scope}.id", assignment.name
    assert len(parts) == 3, assignment.name
    role = bicep.dig(assignment.properties, "roleDefinitionId.function.parameters")
    assert parts[2] == bicep.reference(role["resource_name_1"]), "name and role disagree"
    principal_type = assignment.properties["principalType"]
    if grant[0] in OPTIONAL_PRINCIPALS:
        assert principal_type == grant[0].replace("Id", "Type")
    else:
        assert principal_type == "ServicePrincipal"


@pytest.mark.parametrize("grant", sorted(EXPECTED_GRANTS), ids=lambda g: f"{g[0]}-{g[1]}-{g[2]}")
def test_optional_principals_are_granted_only_when_given(grant: tuple[str, str, str]) -> None:
    assignment = grants()[grant]
    who = grant[0]
    if who not in OPTIONAL_PRINCIPALS:
        assert assignment.condition is None, assignment.name
        return
    assert bicep.dig(assignment.condition, "operator.type") == "not", assignment.name
    tested = bicep.function(bicep.dig(assignment.condition, "operator.operands.bool_value"))
    assert tested == ("empty", {"item_to_test": who}), assignment.name
    assert bicep.resolve(TREE, who) == "", f"{who} must default to empty (no grant)"


def test_nothing_reads_account_keys_or_connection_strings() -> None:
    """No listKeys()/listConnectionStrings() on anything in main.bicep."""
    for node in bicep.walk(TREE):
        call = bicep.function(node)
        assert call is None or call[0] != "list_func", call
        if isinstance(node, dict) and node.get("type") == "function_accessor":
            assert not str(node["operands"].get("func_name", "")).startswith("list"), node


# --- outputs ----------------------------------------------------------------------------------


def test_outputs_name_the_function_url_vault_url_and_storage_account() -> None:
    outputs = TREE["outputs"]
    assert bicep.reference(outputs["FUNCTION_URL"]["value"]) == "functionUrl"
    assert bicep.resolve(TREE, "functionUrl") == "https://${functionApp.properties.defaultHostName}"
    assert bicep.reference(outputs["VAULT_URL"]["value"]) == "vault.properties.vaultUri"
    assert bicep.reference(outputs["STORAGE_ACCOUNT_NAME"]["value"]) == "storage.name"
    assert bicep.reference(outputs["AZURE_FUNCTION_APP_NAME"]["value"]) == "functionApp.name"
    assert bicep.reference(outputs["EVENT_GRID_SYSTEM_TOPIC_NAME"]["value"]) == "systemTopic.name"


def test_outputs_hold_no_secrets() -> None:
    """azd writes outputs to .azure/<env>/.env in plain text: no keys or connection strings."""
    for name, output in TREE["outputs"].items():
        for node in bicep.walk(output["value"]):
            assert "ConnectionString" not in str(bicep.reference(node) or ""), name
            call = bicep.function(node)
            assert call is None or call[0] != "list_func", name


def test_system_topic_is_on_the_storage_account_with_its_own_identity() -> None:
    topic = bicep.only(TREE, "Microsoft.EventGrid/systemTopics")
    assert bicep.reference(topic.properties["source"]) == "storage.id"
    assert topic.properties["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert topic.body["identity"] == {"type": "SystemAssigned"}
