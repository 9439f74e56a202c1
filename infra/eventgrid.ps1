# Subscribe the publish_upload blob trigger to BlobCreated events from `uploads`
# (infra/eventgrid.bicep): azd's postdeploy hook on Windows. The PowerShell twin of
# infra/eventgrid.sh, which explains each step; both make the same az calls in the same order
# (tests/infra/test_scripts.py). Reads main.bicep's outputs from the environment (azd exports
# them to hooks):
#
#   AZURE_RESOURCE_GROUP  AZURE_FUNCTION_APP_NAME  STORAGE_ACCOUNT_NAME  EVENT_GRID_SYSTEM_TOPIC_NAME
#
# Runs on PowerShell 7 and on Windows PowerShell 5.1 (azd falls back to it when pwsh is
# missing). The blob extension key stays in this process: never on a command line or printed.

$ErrorActionPreference = 'Stop'
Set-Location (Split-Path -Parent $PSScriptRoot)

function Get-Required([string]$Name, [string]$What) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if (-not $value) { throw "set $Name ($What)" }
    return $value
}

function Get-Setting([string]$Name, [int]$Default) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if ($value) { return [int]$value }
    return $Default
}

$group = Get-Required 'AZURE_RESOURCE_GROUP' 'an output of azd provision, or deploy.sh'
$app = Get-Required 'AZURE_FUNCTION_APP_NAME' 'an output of main.bicep'
$account = Get-Required 'STORAGE_ACCOUNT_NAME' 'an output of main.bicep'
$topic = Get-Required 'EVENT_GRID_SYSTEM_TOPIC_NAME' 'an output of main.bicep'
$keyAttempts = Get-Setting 'WHEELVAULT_KEY_WAIT_ATTEMPTS' 30
$subscribeAttempts = Get-Setting 'WHEELVAULT_SUBSCRIBE_ATTEMPTS' 5
$subscribePause = Get-Setting 'WHEELVAULT_SUBSCRIBE_PAUSE_SECONDS' 30
# eventgrid.bicep's functionName: the blob-triggered function (its @function_name).
$functionName = 'publish_upload'
# What Event Grid sends to validate a webhook; the blob extension answers it with the code.
$validationEvent = '[{"id": "wheelvault-wake-up", "topic": "", "subject": "", "data": {"validationCode": "wheelvault-wake-up"}, "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": "2026-01-01T00:00:00Z", "metadataVersion": "1", "dataVersion": "1"}]'

$appHost = az functionapp show --resource-group $group --name $app --query defaultHostName --output tsv
if ($LASTEXITCODE -ne 0) { throw "az functionapp show failed for $app in $group" }

# The status code of a request, or 0 when none came back.
function Get-Status([hashtable]$Request) {
    try {
        return [int](Invoke-WebRequest @Request -UseBasicParsing -TimeoutSec 60).StatusCode
    } catch {
        $response = $_.Exception.Response
        if ($response) { return [int]$response.StatusCode }
        return 0
    }
}

[Console]::Error.WriteLine("waiting for the blob extension key of $app (the host creates it on its first start)...")
$found = ''
for ($i = 0; $i -lt $keyAttempts; $i++) {
    # Only whether the key exists is read here. Its errors are dropped ("not yet"), with
    # 'Continue' because Windows PowerShell turns redirected native stderr into errors.
    $found = & {
        $ErrorActionPreference = 'Continue'
        az functionapp keys list --resource-group $group --name $app `
            --query 'systemKeys.blobs_extension != `null`' --output tsv 2> $null
    }
    if ($found -eq 'true') { break }
    $null = Get-Status @{ Uri = "https://$appHost/health"; Method = 'Get' }
    Start-Sleep -Seconds 10
}
if ($found -ne 'true') {
    throw "the blobs_extension key of $app did not appear; is the code deployed? (az functionapp " +
        "keys list -g $group -n $app). Run ./infra/eventgrid.ps1 again once it is."
}

# POST the validation request to the blob extension's webhook; returns the HTTP status.
function Invoke-BlobTriggerWakeUp {
    $key = az functionapp keys list --resource-group $group --name $app `
        --query systemKeys.blobs_extension --output tsv
    return Get-Status @{
        Uri = "https://$appHost/runtime/webhooks/blobs?functionName=Host.Functions.$functionName&code=$key"
        Method = 'Post'
        ContentType = 'application/json'
        Headers = @{ 'aeg-event-type' = 'SubscriptionValidation' }
        Body = $validationEvent
    }
}

[Console]::Error.WriteLine("waking the blob trigger of $app (its scale group starts on the first request)...")
for ($i = 0; $i -lt $subscribeAttempts; $i++) {
    $status = Invoke-BlobTriggerWakeUp
    if ($status -eq 200) { break }
    [Console]::Error.WriteLine("the blob extension webhook answered HTTP $status; trying again in ${subscribePause}s")
    Start-Sleep -Seconds $subscribePause
}

$attempt = 1
while ($true) {
    az deployment group create `
        --resource-group $group `
        --name wheelvault-eventgrid `
        --template-file infra/eventgrid.bicep `
        --parameters functionAppName=$app storageAccountName=$account systemTopicName=$topic `
        --output none
    if ($LASTEXITCODE -eq 0) { break }
    if ($attempt -ge $subscribeAttempts) {
        throw "Event Grid could not validate the $functionName webhook of $app after $attempt " +
            "attempts (the blob trigger's instances may still be starting, or the app's new " +
            "roles may not be in effect yet). No upload reaches $functionName until the " +
            "subscription exists. In a few minutes run again: ./infra/eventgrid.ps1 " +
            "(azd: azd hooks run postdeploy; Linux and macOS: bash infra/eventgrid.sh)."
    }
    [Console]::Error.WriteLine("the Event Grid subscription failed (attempt $attempt of $subscribeAttempts); " +
        "waking the blob trigger and trying again in ${subscribePause}s")
    Start-Sleep -Seconds $subscribePause
    $null = Invoke-BlobTriggerWakeUp
    $attempt++
}
[Console]::Error.WriteLine("Event Grid delivers BlobCreated events from uploads to $functionName on $app")
