#!/usr/bin/env bash
# Subscribe the publish_upload blob trigger to BlobCreated events from `uploads`
# (infra/eventgrid.bicep). Run it after the code is deployed: azd runs it as the postdeploy
# hook, infra/deploy.sh runs it last. It reads main.bicep's outputs from the environment (azd
# exports them to hooks; deploy.sh exports them itself):
#
#   AZURE_RESOURCE_GROUP  AZURE_FUNCTION_APP_NAME  STORAGE_ACCOUNT_NAME  EVENT_GRID_SYSTEM_TOPIC_NAME
#
# The webhook URL needs the blob extension's system key, which the Functions host creates the
# first time it starts with the trigger; so this wakes the app and waits for the key first.
# The key is passed to the deployment by listKeys() inside the template, never on a command line.
set -euo pipefail
cd "$(dirname "$0")/.."

group=${AZURE_RESOURCE_GROUP:?set AZURE_RESOURCE_GROUP (an output of azd provision, or deploy.sh)}
app=${AZURE_FUNCTION_APP_NAME:?set AZURE_FUNCTION_APP_NAME (an output of main.bicep)}
account=${STORAGE_ACCOUNT_NAME:?set STORAGE_ACCOUNT_NAME (an output of main.bicep)}
topic=${EVENT_GRID_SYSTEM_TOPIC_NAME:?set EVENT_GRID_SYSTEM_TOPIC_NAME (an output of main.bicep)}
attempts=${WHEELVAULT_KEY_WAIT_ATTEMPTS:-30}

host=$(az functionapp show --resource-group "$group" --name "$app" --query defaultHostName --output tsv)

echo "waiting for the blob extension key of $app (the host creates it on its first start)..." >&2
found=""
for _ in $(seq 1 "$attempts"); do
    # Only whether the key exists is read here; its value never reaches this shell.
    found=$(az functionapp keys list --resource-group "$group" --name "$app" \
        --query 'systemKeys.blobs_extension != `null`' --output tsv 2>/dev/null || true)
    [ "$found" = "true" ] && break
    curl --silent --output /dev/null --max-time 30 "https://$host/health" || true
    sleep 10
done
if [ "$found" != "true" ]; then
    echo "the blobs_extension key of $app did not appear; is the code deployed? (az functionapp" \
        "keys list -g $group -n $app). Run infra/eventgrid.sh again once it is." >&2
    exit 1
fi

az deployment group create \
    --resource-group "$group" \
    --name wheelvault-eventgrid \
    --template-file infra/eventgrid.bicep \
    --parameters functionAppName="$app" storageAccountName="$account" systemTopicName="$topic" \
    --output none
echo "Event Grid delivers BlobCreated events from uploads to publish_upload on $app" >&2
