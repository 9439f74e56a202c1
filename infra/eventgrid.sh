#!/usr/bin/env bash
# Subscribe the publish_upload blob trigger to BlobCreated events from `uploads`
# (infra/eventgrid.bicep). Run it after the code is deployed: azd runs it as the postdeploy
# hook (infra/eventgrid.ps1 on Windows, the same steps), infra/deploy.sh runs it last. It reads
# main.bicep's outputs from the environment (azd exports them to hooks; deploy.sh exports them
# itself):
#
#   AZURE_RESOURCE_GROUP  AZURE_FUNCTION_APP_NAME  STORAGE_ACCOUNT_NAME  EVENT_GRID_SYSTEM_TOPIC_NAME
#
# 1. The webhook URL needs the blob extension's system key, which the Functions host creates
#    the first time it starts with the trigger: wake the app and wait for the key.
# 2. Creating the subscription makes Event Grid send a validation request to that webhook. On
#    Flex Consumption the blob-triggered functions scale as a group of their own, apart from
#    the HTTP ones, and a cold group may not answer in time: send the same validation request
#    first, so the group is up.
# 3. Deploy the subscription, retrying a few times, spaced, before giving up with what to run.
#
# The key goes to the deployment through listKeys() inside the template, and to the wake-up
# request through curl's standard input: never onto a command line or into the output.
set -euo pipefail
cd "$(dirname "$0")/.."

group=${AZURE_RESOURCE_GROUP:?set AZURE_RESOURCE_GROUP (an output of azd provision, or deploy.sh)}
app=${AZURE_FUNCTION_APP_NAME:?set AZURE_FUNCTION_APP_NAME (an output of main.bicep)}
account=${STORAGE_ACCOUNT_NAME:?set STORAGE_ACCOUNT_NAME (an output of main.bicep)}
topic=${EVENT_GRID_SYSTEM_TOPIC_NAME:?set EVENT_GRID_SYSTEM_TOPIC_NAME (an output of main.bicep)}
key_attempts=${WHEELVAULT_KEY_WAIT_ATTEMPTS:-30}
subscribe_attempts=${WHEELVAULT_SUBSCRIBE_ATTEMPTS:-5}
subscribe_pause=${WHEELVAULT_SUBSCRIBE_PAUSE_SECONDS:-30}
# eventgrid.bicep's functionName: the blob-triggered function (its @function_name).
function_name=publish_upload
# What Event Grid sends to validate a webhook (the sample of Microsoft's "Troubleshoot Event
# Grid subscription validations"); the blob extension answers it with the validation code.
validation_event='[{"id": "wheelvault-wake-up", "topic": "", "subject": "", "data": {"validationCode": "wheelvault-wake-up"}, "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": "2026-01-01T00:00:00Z", "metadataVersion": "1", "dataVersion": "1"}]'

host=$(az functionapp show --resource-group "$group" --name "$app" --query defaultHostName --output tsv)

echo "waiting for the blob extension key of $app (the host creates it on its first start)..." >&2
found=""
for _ in $(seq 1 "$key_attempts"); do
    # Only whether the key exists is read here. (`null` is a JMESPath literal, not a command.)
    # shellcheck disable=SC2016
    found=$(az functionapp keys list --resource-group "$group" --name "$app" \
        --query 'systemKeys.blobs_extension != `null`' --output tsv 2> /dev/null || true)
    [ "$found" = "true" ] && break
    curl --silent --output /dev/null --max-time 30 "https://$host/health" || true
    sleep 10
done
if [ "$found" != "true" ]; then
    echo "the blobs_extension key of $app did not appear; is the code deployed? (az functionapp" \
        "keys list -g $group -n $app). Run infra/eventgrid.sh again once it is." >&2
    exit 1
fi

# POST the validation request to the blob extension's webhook and print the HTTP status. The
# URL with the key is handed to curl as a config file on standard input.
wake_blob_trigger() {
    az functionapp keys list --resource-group "$group" --name "$app" \
        --query systemKeys.blobs_extension --output tsv |
        sed "s|.*|url = \"https://$host/runtime/webhooks/blobs?functionName=Host.Functions.$function_name\\&code=&\"|" |
        curl --config - --silent --output /dev/null --write-out '%{http_code}' --max-time 60 \
            --request POST --header 'Content-Type: application/json' \
            --header 'aeg-event-type: SubscriptionValidation' --data "$validation_event" || true
}

echo "waking the blob trigger of $app (its scale group starts on the first request)..." >&2
status=""
for _ in $(seq 1 "$subscribe_attempts"); do
    status=$(wake_blob_trigger)
    [ "$status" = "200" ] && break
    echo "the blob extension webhook answered HTTP ${status:-nothing}; trying again in ${subscribe_pause}s" >&2
    sleep "$subscribe_pause"
done

attempt=1
until az deployment group create \
    --resource-group "$group" \
    --name wheelvault-eventgrid \
    --template-file infra/eventgrid.bicep \
    --parameters functionAppName="$app" storageAccountName="$account" systemTopicName="$topic" \
    --output none; do
    if [ "$attempt" -ge "$subscribe_attempts" ]; then
        echo "Event Grid could not validate the $function_name webhook of $app after $attempt" \
            "attempts (the blob trigger's instances may still be starting, or the app's new" \
            "roles may not be in effect yet). No upload reaches $function_name until the" \
            "subscription exists. In a few minutes run again: bash infra/eventgrid.sh" \
            "(azd: azd hooks run postdeploy; Windows: ./infra/eventgrid.ps1)." >&2
        exit 1
    fi
    echo "the Event Grid subscription failed (attempt $attempt of $subscribe_attempts);" \
        "waking the blob trigger and trying again in ${subscribe_pause}s" >&2
    sleep "$subscribe_pause"
    wake_blob_trigger > /dev/null
    attempt=$((attempt + 1))
done
echo "Event Grid delivers BlobCreated events from uploads to $function_name on $app" >&2
