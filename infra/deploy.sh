#!/usr/bin/env bash
# Deploy wheelvault with the Azure CLI alone (what `azd up` does, step by step):
#
#   infra/deploy.sh RESOURCE_GROUP LOCATION [ENVIRONMENT_NAME]
#
# 1. the resource group; 2. main.bicep (storage, vault, Flex Consumption app, monitoring,
# roles); 3. the code, as a zip built remotely; 4. eventgrid.bicep (needs the published code);
# 5. prints the next steps. Running it again updates everything in place.
#
# Optional environment:
#   WHEELVAULT_CUSTOM_URL               public base URL (custom domain) instead of the app's URL
#   WHEELVAULT_PUBLISHER_PRINCIPAL_ID   object id that may write to `uploads` directly (RBAC)
#   WHEELVAULT_PUBLISHER_PRINCIPAL_TYPE User, Group or ServicePrincipal (default ServicePrincipal)
#   WHEELVAULT_ADMIN_PRINCIPAL_ID       who manages tokens and the index (default: whoever `az` is
#                                       signed in as, a user, a service principal or a managed
#                                       identity; set but empty: no operator)
#   WHEELVAULT_ADMIN_PRINCIPAL_TYPE     User, Group or ServicePrincipal (default: the kind of the
#                                       signed-in account, from `az account show`)
#   WHEELVAULT_VAULT_CREATE_MODE        default or recover (default: recover when a soft-deleted
#                                       vault of this group and environment exists, see
#                                       infra/vault-create-mode.sh)
#   WHEELVAULT_UPSTREAM_URLS_SECRET     name of the vault secret holding the upstream URLs
#   WHEELVAULT_UPSTREAM_PUBLIC_INDEX    true: the public index as the upstream (no secret needed)
#   WHEELVAULT_UPSTREAM_RESERVED, _ALLOW, _DENY, _MIN_AGE   the upstream policy (README)
#   WHEELVAULT_ENTRA_APP_REGISTRATION   true (default): create the Entra ID app registration
#                                       (needs Microsoft Graph permissions, README); false: none
#   WHEELVAULT_ENTRA_EXISTING_AUDIENCE, WHEELVAULT_ENTRA_EXISTING_TENANT_ID   with false: an
#                                       existing registration's audiences and tenant (else no
#                                       Entra ID sign-in)
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: infra/deploy.sh RESOURCE_GROUP LOCATION [ENVIRONMENT_NAME]"
group=${1:?$usage}
location=${2:?$usage}
environment=${3:-$group}

# What `az account show` calls the signed-in account (user.type), as a principalType.
principal_type_of() {
    case "$1" in
        user) echo User ;;
        servicePrincipal) echo ServicePrincipal ;;
        *) return 1 ;;
    esac
}

# The object id of the signed-in account: a user's from Microsoft Graph's /me; a service
# principal's (or a managed identity's, whose client id az keeps as user.clientId) from its
# app id, which needs Microsoft Graph read access (Application.Read.All).
signed_in_object_id() {
    if [ "$account_type" = User ]; then
        az ad signed-in-user show --query id --output tsv
    else
        az ad sp show --id "$(az account show --query 'user.clientId || user.name' --output tsv)" \
            --query id --output tsv
    fi
}

signed_in_as=$(az account show --query user.type --output tsv) || {
    echo "not signed in: run az login first" >&2
    exit 1
}
account_type=$(principal_type_of "$signed_in_as") || {
    echo "az is signed in as '$signed_in_as', neither a user nor a service principal" >&2
    exit 1
}
admin_type=${WHEELVAULT_ADMIN_PRINCIPAL_TYPE:-$account_type}
if [ -z "${WHEELVAULT_ADMIN_PRINCIPAL_ID+set}" ]; then
    admin=$(signed_in_object_id) || {
        echo "could not find the object id of the signed-in $account_type (a service principal" \
            "needs Microsoft Graph Application.Read.All for it): set WHEELVAULT_ADMIN_PRINCIPAL_ID" \
            "(and WHEELVAULT_ADMIN_PRINCIPAL_TYPE), or set it empty for no operator" >&2
        exit 1
    }
else
    admin=$WHEELVAULT_ADMIN_PRINCIPAL_ID
fi

echo "1/5 resource group $group in $location" >&2
az group create --name "$group" --location "$location" --output none

# After `az group delete` (or `azd down`) the vault waits soft-deleted under the same name.
vault_mode=${WHEELVAULT_VAULT_CREATE_MODE:-$(AZURE_RESOURCE_GROUP="$group" AZURE_ENV_NAME="$environment" \
    infra/vault-create-mode.sh)}

echo "2/5 infrastructure (infra/main.bicep, admin $admin_type ${admin:-none}, vault $vault_mode)" >&2
# main.parameters.json holds azd's ${...} placeholders; every one is given a value here.
az deployment group create \
    --resource-group "$group" \
    --name wheelvault-main \
    --template-file infra/main.bicep \
    --parameters @infra/main.parameters.json \
    --parameters \
        environmentName="$environment" \
        location="$location" \
        adminPrincipalId="$admin" \
        adminPrincipalType="$admin_type" \
        vaultCreateMode="$vault_mode" \
        publicUrl="${WHEELVAULT_CUSTOM_URL:-}" \
        publisherPrincipalId="${WHEELVAULT_PUBLISHER_PRINCIPAL_ID:-}" \
        publisherPrincipalType="${WHEELVAULT_PUBLISHER_PRINCIPAL_TYPE:-ServicePrincipal}" \
        upstreamUrlsSecretName="${WHEELVAULT_UPSTREAM_URLS_SECRET:-}" \
        upstreamPublicIndex="${WHEELVAULT_UPSTREAM_PUBLIC_INDEX:-false}" \
        upstreamReserved="${WHEELVAULT_UPSTREAM_RESERVED:-}" \
        upstreamAllow="${WHEELVAULT_UPSTREAM_ALLOW:-}" \
        upstreamDeny="${WHEELVAULT_UPSTREAM_DENY:-}" \
        upstreamMinAge="${WHEELVAULT_UPSTREAM_MIN_AGE:-}" \
        entraAppRegistration="${WHEELVAULT_ENTRA_APP_REGISTRATION:-true}" \
        entraExistingAudience="${WHEELVAULT_ENTRA_EXISTING_AUDIENCE:-}" \
        entraExistingTenantId="${WHEELVAULT_ENTRA_EXISTING_TENANT_ID:-}" \
    --output none

output() {
    az deployment group show --resource-group "$group" --name wheelvault-main \
        --query "properties.outputs.$1.value" --output tsv
}
app=$(output AZURE_FUNCTION_APP_NAME)
public_url=$(output PUBLIC_URL)
vault_url=$(output VAULT_URL)
blob_endpoint=$(output STORAGE_BLOB_ENDPOINT)
entra_scope=$(output ENTRA_SCOPE)
export AZURE_RESOURCE_GROUP="$group"
export AZURE_FUNCTION_APP_NAME="$app"
STORAGE_ACCOUNT_NAME=$(output STORAGE_ACCOUNT_NAME)
EVENT_GRID_SYSTEM_TOPIC_NAME=$(output EVENT_GRID_SYSTEM_TOPIC_NAME)
export STORAGE_ACCOUNT_NAME EVENT_GRID_SYSTEM_TOPIC_NAME

echo "3/5 code -> $app (remote build installs requirements.txt)" >&2
# Only what the app runs: the entry point, host.json, requirements.txt and the two packages.
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
python3 - "$build/app.zip" <<'PY'
import sys
import zipfile
from pathlib import Path

with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as bundle:
    for name in ("function_app.py", "host.json", "requirements.txt"):
        bundle.write(name)
    for package in ("shared", "functions"):
        for path in sorted(Path(package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                bundle.write(path)
PY
# The platform writes the package to the deployment container as the app's identity, whose
# role there is minutes old on a first deployment (role assignments take up to 10 minutes to
# apply): a refusal then is retried, spaced.
deploy_attempts=${WHEELVAULT_DEPLOY_ATTEMPTS:-5}
deploy_pause=${WHEELVAULT_DEPLOY_PAUSE_SECONDS:-60}
attempt=1
until az functionapp deployment source config-zip \
    --resource-group "$group" \
    --name "$app" \
    --src "$build/app.zip" \
    --build-remote true \
    --output none; do
    if [ "$attempt" -ge "$deploy_attempts" ]; then
        echo "the code deployment to $app failed $attempt times. If the errors are 403 or" \
            "AuthorizationPermissionMismatch, the app's new roles are not in effect yet: run" \
            "infra/deploy.sh $group $location $environment again in a few minutes." >&2
        exit 1
    fi
    echo "the code deployment failed (attempt $attempt of $deploy_attempts); new role" \
        "assignments can take minutes to apply, trying again in ${deploy_pause}s" >&2
    sleep "$deploy_pause"
    attempt=$((attempt + 1))
done

echo "4/5 Event Grid subscription (infra/eventgrid.bicep)" >&2
infra/eventgrid.sh

echo "5/5 done" >&2
cat <<EOF

wheelvault is up at $public_url (health: $public_url/health)

Create the first tokens (needs Key Vault Secrets Officer on the vault; adminPrincipalId has it;
a 403 Forbidden in the first minutes means the new role is not in effect yet: wait, run again):
  .venv/bin/wheelvault --vault-url $vault_url --public-url $public_url \\
      token create ci-publisher --scope publish --description "CI uploads"
  .venv/bin/wheelvault --vault-url $vault_url --public-url $public_url \\
      token create readers --scope read
  .venv/bin/wheelvault --vault-url $vault_url --public-url $public_url token url readers

Hand a publisher an upload route, either
  - a publish token: wheelvault upload --url $public_url --token "\$TOKEN" dist/*.whl
    (POST /sas/upload gives a create-only SAS for uploads/<file>), or
  - RBAC: deploy again with WHEELVAULT_PUBLISHER_PRINCIPAL_ID=<object id>; that principal gets
    Storage Blob Data Contributor on the uploads container only and uploads with
    az storage blob upload --auth-mode login --blob-endpoint $blob_endpoint -c uploads -f FILE.whl

Check an upload (operator, Storage Blob Data Contributor from adminPrincipalId):
  .venv/bin/wheelvault --storage-url $blob_endpoint status FILE.whl
EOF
if [ -n "$entra_scope" ]; then
    cat <<EOF

Sign in with Entra ID: the operator (adminPrincipalId) has Packages.Publish; assign the roles to
others as the README shows. With az login and the keyring backend (clients/keyring):
  export WHEELVAULT_KEYRING_INDEXES="${public_url%/}=$entra_scope"
  pip install --keyring-provider import --index-url "${public_url/https:\/\//https://entra@}/simple/" PACKAGE
EOF
fi
