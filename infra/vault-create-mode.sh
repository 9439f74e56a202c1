#!/usr/bin/env bash
# The createMode main.bicep's vault needs (parameter vaultCreateMode): `recover` when a
# soft-deleted vault of this deployment is waiting, else `default`. After `azd down` or
# `az group delete` the vault stays soft-deleted for 90 days (purge protection forbids purging
# it sooner) and keeps its name, which the next deployment of the same group and environment
# derives again: creating it anew fails, recovering it brings it back with its tokens.
#
#   infra/vault-create-mode.sh          prints the mode (infra/deploy.sh)
#   infra/vault-create-mode.sh --azd    also stores it as WHEELVAULT_VAULT_CREATE_MODE in the
#                                       azd environment (azd's preprovision hook)
#
# Reads AZURE_RESOURCE_GROUP and AZURE_ENV_NAME (azd exports both to hooks; deploy.sh sets them).
# The vault's name is kv-wv-<uniqueString(subscription, group, environment)>, a hash a script
# cannot reproduce; the deleted vault is recognised instead by what it kept: its original
# resource id (this resource group) and its azd-env-name tag (this environment). When the
# deleted vaults cannot be listed (no group yet, or no right to list them), the mode already
# set is kept (default: `default`) and a warning says how to set it by hand. infra/vault-create-mode.ps1
# is the same for Windows.
set -euo pipefail

store_in_azd=false
if [ "${1:-}" = "--azd" ]; then
    store_in_azd=true
fi
group=${AZURE_RESOURCE_GROUP:-}
environment=${AZURE_ENV_NAME:?set AZURE_ENV_NAME (the azd environment name, main.bicep environmentName)}
current=${WHEELVAULT_VAULT_CREATE_MODE:-default}

# Names of the soft-deleted vaults of this group and environment, one a line (the JSON is
# filtered here: a JMESPath for the hyphenated tag would need quotes that pwsh mangles).
deleted_vaults() {
    local listing
    listing=$(az keyvault list-deleted --resource-type vault \
        --query "[?starts_with(name, 'kv-wv-')]" --output json) || return 1
    python3 -c '
import json, sys
group, environment = sys.argv[1].lower(), sys.argv[2]
marker = "/resourcegroups/" + group + "/providers/microsoft.keyvault/vaults/"
for vault in json.load(sys.stdin):
    properties = vault.get("properties") or {}
    tags = properties.get("tags") or {}
    if marker in (properties.get("vaultId") or "").lower() and tags.get("azd-env-name") == environment:
        print(vault["name"])
' "$group" "$environment" <<< "$listing"
}

keep_current() {
    echo "warning: $1; vaultCreateMode stays '$current'. If provisioning fails because the" \
        "vault name is taken by a soft-deleted vault, set WHEELVAULT_VAULT_CREATE_MODE=recover" \
        "(azd env set WHEELVAULT_VAULT_CREATE_MODE recover) and deploy again." >&2
    echo "$current"
}

if [ -z "$group" ]; then
    keep_current "AZURE_RESOURCE_GROUP is not set yet, so no deleted vault can be matched"
    exit 0
fi
if ! found=$(deleted_vaults); then
    keep_current "could not list soft-deleted vaults (az keyvault list-deleted)"
    exit 0
fi
mode=default
if [ -n "$found" ]; then
    mode=recover
    echo "soft-deleted vault $(echo "$found" | head -n 1) of environment $environment in $group:" \
        "it is recovered (vaultCreateMode=recover), with its secrets" >&2
fi
if [ "$store_in_azd" = true ]; then
    azd env set WHEELVAULT_VAULT_CREATE_MODE "$mode"
fi
echo "$mode"
