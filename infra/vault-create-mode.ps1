# The createMode main.bicep's vault needs (parameter vaultCreateMode): `recover` when a
# soft-deleted vault of this deployment is waiting, else `default`. The Windows (PowerShell)
# twin of infra/vault-create-mode.sh, which says why; both make the same az calls in the same
# order (tests/infra/test_scripts.py).
#
#   ./infra/vault-create-mode.ps1          prints the mode
#   ./infra/vault-create-mode.ps1 -Azd     also stores it as WHEELVAULT_VAULT_CREATE_MODE in the
#                                          azd environment (azd's preprovision hook on Windows)
#
# Reads AZURE_RESOURCE_GROUP and AZURE_ENV_NAME. Runs on PowerShell 7 and on Windows
# PowerShell 5.1 (azd falls back to it when pwsh is missing).
param([switch]$Azd)

$ErrorActionPreference = 'Stop'

$group = $env:AZURE_RESOURCE_GROUP
$environment = $env:AZURE_ENV_NAME
if (-not $environment) {
    throw 'set AZURE_ENV_NAME (the azd environment name, main.bicep environmentName)'
}
$current = if ($env:WHEELVAULT_VAULT_CREATE_MODE) { $env:WHEELVAULT_VAULT_CREATE_MODE } else { 'default' }

# Names of the soft-deleted vaults of this group and environment; $null when they cannot be
# listed. The JSON is filtered here: a JMESPath for the hyphenated tag needs quotes that
# PowerShell mangles on their way to az.
function Get-DeletedVault {
    $listing = az keyvault list-deleted --resource-type vault `
        --query "[?starts_with(name, 'kv-wv-')]" --output json
    if ($LASTEXITCODE -ne 0) { return $null }
    $marker = "/resourcegroups/$($group.ToLower())/providers/microsoft.keyvault/vaults/"
    $found = @()
    foreach ($vault in (($listing -join "`n") | ConvertFrom-Json)) {
        $properties = $vault.properties
        $tags = $properties.tags
        $vaultEnvironment = if ($tags) { $tags.'azd-env-name' } else { $null }
        if ("$($properties.vaultId)".ToLower().Contains($marker) -and $vaultEnvironment -ceq $environment) {
            $found += $vault.name
        }
    }
    return , $found
}

function Write-KeepCurrent([string]$Reason) {
    [Console]::Error.WriteLine("warning: $Reason; vaultCreateMode stays '$current'. If " +
        'provisioning fails because the vault name is taken by a soft-deleted vault, set ' +
        'WHEELVAULT_VAULT_CREATE_MODE=recover (azd env set WHEELVAULT_VAULT_CREATE_MODE recover) ' +
        'and deploy again.')
    Write-Output $current
}

if (-not $group) {
    Write-KeepCurrent 'AZURE_RESOURCE_GROUP is not set yet, so no deleted vault can be matched'
    exit 0
}
$found = Get-DeletedVault
if ($null -eq $found) {
    Write-KeepCurrent 'could not list soft-deleted vaults (az keyvault list-deleted)'
    exit 0
}
$mode = 'default'
if ($found.Count -gt 0) {
    $mode = 'recover'
    [Console]::Error.WriteLine("soft-deleted vault $($found[0]) of environment $environment in " +
        "${group}: it is recovered (vaultCreateMode=recover), with its secrets")
}
if ($Azd) {
    azd env set WHEELVAULT_VAULT_CREATE_MODE $mode
    if ($LASTEXITCODE -ne 0) { throw 'azd env set WHEELVAULT_VAULT_CREATE_MODE failed' }
}
Write-Output $mode
