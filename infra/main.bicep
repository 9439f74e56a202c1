// wheelvault in Azure: storage without shared keys, Key Vault in RBAC mode, a Flex Consumption
// function app that reaches both through one user-assigned managed identity, and monitoring.
//
// Deployed to an existing resource group (`az deployment group create`, or `azd up`). The Event
// Grid subscription that feeds the blob trigger is in eventgrid.bicep: it needs the blob
// extension's system key, which exists only once the code is published.
//
// Kept to the Bicep syntax pycep-parser (and so checkov) reads: `@allowed` rather than union
// types, no spread, child resources top-level with `parent:`. See infra/README.md. The Entra ID
// app registration (Microsoft Graph) is the module entra.bicep.

targetScope = 'resourceGroup'

@description('Name of the environment (azd env name); part of every resource name and tag.')
@minLength(1)
@maxLength(40)
param environmentName string

@description('Azure region; Flex Consumption must be available there.')
param location string = resourceGroup().location

@description('Base URL consumers use, e.g. https://pkgs.example.com. Empty: the function app URL.')
param publicUrl string = ''

@description('Optional principal that may publish by writing to the uploads container directly.')
param publisherPrincipalId string = ''

@description('Kind of the publisher principal.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param publisherPrincipalType string = 'ServicePrincipal'

@description('Optional operator (usually you): manages tokens in the vault and yanks, deletes or reindexes.')
param adminPrincipalId string = ''

@description('Kind of the operator principal.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param adminPrincipalType string = 'User'

@description('Create the Entra ID app registration for sign-in with Entra ID (needs Microsoft Graph permissions: see the README). false: none is created; give entraExistingAudience (and entraExistingTenantId) of an existing one, or leave them empty to keep Entra sign-in off.')
param entraAppRegistration bool = true

@description('With entraAppRegistration false: the token audiences of an existing app registration (its Application ID URI and client id, comma separated). Empty: no Entra ID sign-in.')
param entraExistingAudience string = ''

@description('With entraAppRegistration false: the tenant (GUID) of that registration. Empty: this deployment\'s tenant.')
param entraExistingTenantId string = ''

@description('Uploads larger than this are quarantined as too-large (at most 10 GiB).')
@minValue(1)
@maxValue(10737418240)
param maxUploadBytes int = 104857600

@description('Seconds the token verifier trusts what it read from the vault.')
@minValue(0)
@maxValue(3600)
param tokenCacheSeconds int = 60

@description('NCRONTAB schedule (six fields, UTC) of the token rotation timer.')
param rotationSchedule string = '0 0 * * * *'

@description('Lifetime of a download or upload SAS.')
@minValue(30)
@maxValue(3600)
param sasExpirySeconds int = 600

@description('Cache-Control max-age of index pages.')
@minValue(0)
@maxValue(86400)
param pageCacheSeconds int = 60

@description('Name of a secret in this vault holding WHEELVAULT_UPSTREAM_URLS (upstream simple-index base URLs, tried in order; credentials in them stay in the vault). Empty: upstreamPublicIndex decides. Given, it wins over upstreamPublicIndex.')
param upstreamUrlsSecretName string = ''

@description('With no upstreamUrlsSecretName: true makes the public index (https://pypi.org/simple/) the one upstream, no secret needed; false: no upstream.')
param upstreamPublicIndex bool = false

@description('Name patterns (e.g. acme-*) never taken from upstream, even before their first private publish.')
param upstreamReserved string = ''

@description('Name patterns that may come from upstream. Empty: every name not reserved or denied.')
param upstreamAllow string = ''

@description('Name patterns never taken from upstream.')
param upstreamDeny string = ''

@description('ISO 8601 duration (e.g. P7D): younger upstream files, and files without an upload time, are not offered. Empty: no minimum.')
param upstreamMinAge string = ''

@description('Seconds an upstream project page is served without asking the upstream again.')
@minValue(0)
@maxValue(86400)
param upstreamPageSeconds int = 600

@description('Seconds a name the upstreams do not know is answered 404 without asking again.')
@minValue(0)
@maxValue(86400)
param upstreamMissSeconds int = 60

@description('Replication of the storage account: geo-redundant by default, as it holds the only copy of the packages.')
@allowed([
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
  'Standard_ZRS'
  'Standard_LRS'
])
param storageSku string = 'Standard_GRS'

@description('Most instances the Flex Consumption plan may scale out to: Flex takes 40 (the lowest maximum) to 1000.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each Flex Consumption instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Days the Log Analytics workspace keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Days a previous blob version (a rewritten index page or record, a replaced code package) is kept before the lifecycle rule deletes it; soft delete keeps it 7 days more.')
@minValue(1)
@maxValue(365)
param oldVersionDays int = 7

@description('default: create the vault (or update it). recover: recover the soft-deleted vault of the same name, as after `azd down` with the same environment name (purge protection keeps the name taken for 90 days).')
@allowed([
  'default'
  'recover'
])
param vaultCreateMode string = 'default'

// Globally unique names (storage, vault, app) from the subscription, group and environment.
var suffix = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
  app: 'wheelvault'
}

// Container names the code uses (shared/core/layout.py), the one Flex Consumption deploys the
// code package to, the one Event Grid writes undeliverable events to, and the Functions host's
// own two (locks and blob receipts; keys), created here so its roles can be scoped to them.
var uploadsContainerName = 'uploads'
var indexContainerName = 'index'
var quarantineContainerName = 'quarantine'
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletter'
var hostContainerName = 'azure-webjobs-hosts'
var hostSecretsContainerName = 'azure-webjobs-secrets'

// The upload API's form carries the file plus at most this much (fields and framing): the
// host's request body limit is the file cap plus this (shared/services/upload_api.py
// FORM_ROOM_BYTES), so a file at the cap reaches the function.
var uploadFormRoomBytes = 5242880
var publicIndexUrl = 'https://pypi.org/simple/'

// Built-in role definition ids (the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// ---------------------------------------------------------------------------------------------
// Identity: the app reaches storage, the vault and Application Insights as this identity only.

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-wv-${suffix}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------
// Storage: the index itself, the host's own state and the code package. No account keys at all:
// every client (the app, the host, Event Grid, publishers) authenticates with Entra ID, and the
// SAS the app hands out are user-delegation SAS.

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:Default action Allow: pip and uv download from anywhere through the SAS redirects, and Flex Consumption without a VNet has no fixed outbound addresses; every request needs Entra ID or a user-delegation SAS
  // checkov:skip=CKV_AZURE_59:Public network access: see CKV_AZURE_35
  // checkov:skip=CKV_AZURE_43:The name is 'stwv' and the 13 lowercase alphanumerics of uniqueString(): valid, but checkov cannot evaluate the interpolation
  name: 'stwv${suffix}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobServices 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    // A deleted or overwritten blob (a page, a record) can be recovered for a week.
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource uploadsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: uploadsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource indexContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: indexContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource quarantineContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: quarantineContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hostContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: hostContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hostSecretsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: hostSecretsContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Versioning keeps every earlier state of every rewritten blob (index pages and records are
// rewritten on each publish, the code package on each deploy): delete those versions after
// oldVersionDays. Package files are written once, so their only version is current and is never
// touched; a version this rule deletes stays soft-deleted for deleteRetentionPolicy's 7 days.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          enabled: true
          name: 'delete-old-versions'
          type: 'Lifecycle'
          definition: {
            actions: {
              version: {
                delete: {
                  daysAfterCreationGreaterThan: oldVersionDays
                }
              }
            }
            filters: {
              blobTypes: [
                'blockBlob'
              ]
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    blobServices
  ]
}

// ---------------------------------------------------------------------------------------------
// Key Vault: the access tokens (wvtoken-*, wvindexurl-*). RBAC only, no access policies; a
// deleted vault or secret can be recovered for 90 days and never purged early.

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:Default action Allow: Flex Consumption without a VNet has no fixed outbound addresses to allow; every request needs an Entra token and an RBAC role on this vault
  // checkov:skip=CKV_AZURE_189:Public network access: see CKV_AZURE_109
  name: 'kv-wv-${suffix}'
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    // recover: bring back the soft-deleted vault of this name (and its secrets) instead of
    // failing on the name; set it for one deployment after `azd down` (see the README).
    createMode: vaultCreateMode
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Monitoring: Application Insights on a Log Analytics workspace, with local (key) auth off, so
// telemetry is accepted only from the identity (Monitoring Metrics Publisher below).

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-wv-${suffix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-wv-${suffix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

// ---------------------------------------------------------------------------------------------
// Function app on Flex Consumption (FC1): Linux, Python 3.11, code from a blob container read
// with the identity. Runtime and scale live in functionAppConfig, not in app settings.

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy on Flex Consumption needs always-ready instances (a standing cost); the functions are stateless and Event Grid retries for a day
  name: 'plan-wv-${suffix}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:Public network access is how pip, uv and poetry reach the index; every route but /health checks a wheelvault token
  // checkov:skip=CKV_AZURE_17:Client certificates cannot work for pip, uv or poetry; the routes check wheelvault tokens (HTTP Basic) instead
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales on demand (maximumInstanceCount); a standing minimum would mean always-ready instances, a cost this index does not need
  // checkov:skip=CKV_AZURE_213:No platform health probe: it would call /health (storage and vault) on every instance every minute and keep the app from scaling to zero; point an external availability test at /health instead
  // checkov:skip=CKV_AZURE_78:ftpsState is a site setting Flex Consumption does not support (some regions reject the site); FTP is off through the ftp basicPublishingCredentialsPolicies below
  // checkov:skip=CKV_AZURE_18:http20Enabled is left out on Flex Consumption: the official Flex samples set no siteConfig property, and properties Flex does not take make some regions reject the site
  // checkov:skip=CKV_AZURE_67:HTTP version of the function app: see CKV_AZURE_18 (http20Enabled left out on Flex Consumption)
  name: 'func-wv-${suffix}'
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references in app settings (WHEELVAULT_UPSTREAM_URLS) resolve as this identity:
    // the app has no system-assigned one.
    keyVaultReferenceIdentity: identity.id
    // Nothing Flex Consumption does not take (ftpsState, http20Enabled, alwaysOn, the *Version
    // runtime properties, functionAppScaleLimit ...: functionAppConfig replaces them; some regions
    // reject the site). The TLS minimum is on no such list and is the platform's default anyway.
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  // The code package container must exist, and the host reads storage as the identity from
  // its first start: create the containers and grant the roles first.
  dependsOn: [
    deploymentContainer
    appPackageWriter
    appHostBlobOwner
    appHostSecretsOwner
    appQueueContributor
    appTableContributor
  ]
}

// The app's own URL (the host name is chosen by the platform), and the one consumers use.
var functionUrl = 'https://${functionApp.properties.defaultHostName}'
var publicBaseUrl = empty(publicUrl) ? functionUrl : publicUrl

// The upstream URLs may hold credentials: the setting is a Key Vault reference the platform
// resolves with the identity (keyVaultReferenceIdentity), never the URLs themselves.
// Without a secret, upstreamPublicIndex may name the public index (no credentials, so a plain
// value); a secret, when given, wins (it may list the public index among others).
var upstreamUrlsReference = empty(upstreamUrlsSecretName) ? '' : '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${upstreamUrlsSecretName})'
var upstreamUrls = empty(upstreamUrlsSecretName) ? (upstreamPublicIndex ? publicIndexUrl : '') : upstreamUrlsReference

// ---------------------------------------------------------------------------------------------
// Entra ID sign-in: the app registration (entra.bicep, Microsoft Graph) whose access tokens the
// front door accepts beside wheelvault tokens. The function app needs no role for it: it checks
// signatures against the tenant's public keys (OpenID configuration), read without credentials.

module entraApp 'entra.bicep' = if (entraAppRegistration) {
  name: 'wheelvault-entra-${suffix}'
  params: {
    appName: 'wheelvault-${suffix}'
    displayName: 'wheelvault (${environmentName})'
    publisherPrincipalId: adminPrincipalId
  }
}

// The settings the verifier reads. v2 tokens carry the client id as `aud`, v1 tokens the
// Application ID URI: both are accepted. No audience means Entra sign-in is off, and then the
// tenant is left empty too (the settings refuse one without the other).
var entraAudience = entraAppRegistration ? '${entraApp.outputs.identifierUri},${entraApp.outputs.clientId}' : entraExistingAudience
var entraTenantId = entraAppRegistration ? tenant().tenantId : (empty(entraExistingAudience) ? '' : (empty(entraExistingTenantId) ? tenant().tenantId : entraExistingTenantId))
// The cloud's sign-in endpoint (sovereign clouds differ); the setting takes it without the
// trailing slash environment() gives.
var loginEndpoint = environment().authentication.loginEndpoint
var entraAuthority = endsWith(loginEndpoint, '/') ? substring(loginEndpoint, 0, length(loginEndpoint) - 1) : loginEndpoint

// App settings are a child resource so WHEELVAULT_PUBLIC_URL can default to the app's own host
// name. Names are those of local.settings.sample.json and shared/settings.py; the connection
// string forms (AzureWebJobsStorage, WHEELVAULT_STORAGE) are absent on purpose: no shared keys.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every Microsoft.Web/sites/config as if it were the site's web config; these
  // checks are about settings this resource (app settings) cannot hold:
  // checkov:skip=CKV_AZURE_13:Easy Auth would demand an Entra sign-in pip cannot do; wheelvault checks its own tokens in code
  // checkov:skip=CKV_AZURE_63:App Service file-system HTTP logs do not exist on Flex Consumption; requests are logged to Application Insights
  // checkov:skip=CKV_AZURE_65:Detailed error pages are an IIS/App Service feature; the functions answer JSON errors
  // checkov:skip=CKV_AZURE_66:Failed request tracing is an IIS/App Service feature; failures go to Application Insights
  // checkov:skip=CKV_AZURE_80:Not a .NET app: the runtime is Python 3.11 (functionAppConfig.runtime)
  // checkov:skip=CKV_AZURE_88:Flex Consumption uses no Azure Files content share; the code package is in a blob container
  // checkov:skip=CKV_AZURE_222:Public network access: see the same waiver on functionApp
  parent: functionApp
  name: 'appsettings'
  properties: {
    // The host's own storage (leases, blob receipts, keys, poison queue, diagnostic events),
    // as the identity.
    AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
    AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
    AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identity.properties.clientId
    // The blob trigger's connection (connection=WHEELVAULT_STORAGE) and the app's blob client.
    WHEELVAULT_STORAGE__blobServiceUri: storage.properties.primaryEndpoints.blob
    WHEELVAULT_STORAGE__queueServiceUri: storage.properties.primaryEndpoints.queue
    WHEELVAULT_STORAGE__credential: 'managedidentity'
    WHEELVAULT_STORAGE__clientId: identity.properties.clientId
    WHEELVAULT_MAX_UPLOAD_BYTES: string(maxUploadBytes)
    // The host refuses larger request bodies itself (default 100 MiB): room for a file at the cap.
    FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: string(maxUploadBytes + uploadFormRoomBytes)
    WHEELVAULT_VAULT_URL: vault.properties.vaultUri
    WHEELVAULT_VAULT_CREDENTIAL: 'managedidentity'
    WHEELVAULT_VAULT_CLIENT_ID: identity.properties.clientId
    WHEELVAULT_PUBLIC_URL: publicBaseUrl
    WHEELVAULT_TOKEN_CACHE_SECONDS: string(tokenCacheSeconds)
    WHEELVAULT_ROTATION_SCHEDULE: rotationSchedule
    WHEELVAULT_SAS_EXPIRY_SECONDS: string(sasExpirySeconds)
    WHEELVAULT_PAGE_CACHE_SECONDS: string(pageCacheSeconds)
    WHEELVAULT_UPSTREAM_URLS: upstreamUrls
    WHEELVAULT_UPSTREAM_RESERVED: upstreamReserved
    WHEELVAULT_UPSTREAM_ALLOW: upstreamAllow
    WHEELVAULT_UPSTREAM_DENY: upstreamDeny
    WHEELVAULT_UPSTREAM_MIN_AGE: upstreamMinAge
    WHEELVAULT_UPSTREAM_PAGE_SECONDS: string(upstreamPageSeconds)
    WHEELVAULT_UPSTREAM_MISS_SECONDS: string(upstreamMissSeconds)
    WHEELVAULT_ENTRA_TENANT_ID: entraTenantId
    WHEELVAULT_ENTRA_AUDIENCE: entraAudience
    WHEELVAULT_ENTRA_AUTHORITY: entraAuthority
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  }
  dependsOn: [
    appSecretsOfficer
    appMetricsPublisher
  ]
}

// No basic-auth publishing: deployments authenticate with Entra ID (az, azd).
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// ---------------------------------------------------------------------------------------------
// Event Grid system topic on the storage account. Its subscription is in eventgrid.bicep; the
// topic is here so its identity's role on the dead-letter container exists well before then.

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'evgt-wv-${suffix}'
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// ---------------------------------------------------------------------------------------------
// Role assignments, least privilege. Names are deterministic, so redeploying is a no-op.

// The function app's identity reaches storage as the Functions host (AzureWebJobsStorage), the
// platform (the code package) and wheelvault itself (WHEELVAULT_STORAGE). Data roles sit on the
// containers each part uses; what stays on the account is listed with the reason.

// The host keeps locks, blob receipts and its host id in azure-webjobs-hosts and its keys (the
// blob extension's, which eventgrid.sh reads) in azure-webjobs-secrets. Blob Data Owner is what
// Microsoft documents for host storage; it is limited to those two containers, created above so
// the host never needs to create one.
resource appHostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostContainer.id, identity.id, roles.storageBlobDataOwner)
  scope: hostContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appHostSecretsOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostSecretsContainer.id, identity.id, roles.storageBlobDataOwner)
  scope: hostSecretsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The code package: a deploy (azd, az, Core Tools) sends the zip to the app's /api/publish and the
// platform writes the package into this container as the deployment storage identity (this
// one), then reads it on every start. Contributor is the role Microsoft's own tooling gives that
// identity, here on this container only.
resource appPackageWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deploymentContainer.id, identity.id, roles.storageBlobDataContributor)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// wheelvault's own data: reads uploads (the blob trigger, the upload API) and writes the index
// and quarantine; nothing else.
resource appUploadsContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(uploadsContainer.id, identity.id, roles.storageBlobDataContributor)
  scope: uploadsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appIndexContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(indexContainer.id, identity.id, roles.storageBlobDataContributor)
  scope: indexContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appQuarantineContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(quarantineContainer.id, identity.id, roles.storageBlobDataContributor)
  scope: quarantineContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Account scope, 1 of 3: the download and upload SAS are user-delegation SAS. Get User Delegation
// Key acts on the account, so its action can only be granted there (or higher); Storage Blob
// Delegator holds that action and no data access. A SAS signed with the key grants at most what
// the identity itself may do on the SAS's blob: read in index, create in uploads.
resource appDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDelegator)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDelegator)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Account scope, 2 of 3: queues. The blob trigger writes poison blobs to a queue and the host
// keeps its own queues, named after the host id at run time; wheelvault has no queue data.
resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Account scope, 3 of 3: tables. The host writes diagnostic events to a table it creates each
// month (AzureWebJobsStorage__tableServiceUri); without this role they are lost with a warning.
// wheelvault has no table data.
resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Secrets Officer on this vault only: the verifier reads tokens, the rotation timer writes them.
resource appSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Telemetry with Entra ID auth (DisableLocalAuth), on this component only.
resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Event Grid writes undeliverable events, as the topic's identity, to this one container.
resource topicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopic.id, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Optional: a publisher (a CI identity) that writes wheels into uploads, and nothing else.
resource publisherUploads 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(publisherPrincipalId)) {
  name: guid(uploadsContainer.id, publisherPrincipalId, roles.storageBlobDataContributor)
  scope: uploadsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: publisherPrincipalId
    principalType: publisherPrincipalType
  }
}

// Optional: the operator creates the first tokens (wheelvault token create) on this vault ...
resource adminSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(vault.id, adminPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: adminPrincipalId
    principalType: adminPrincipalType
  }
}

// ... and reads or changes the index (wheelvault status, yank, delete, reindex): the app's three
// containers, not the host's, the code package or the dead letters.
resource adminUploadsContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(uploadsContainer.id, adminPrincipalId, roles.storageBlobDataContributor)
  scope: uploadsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: adminPrincipalId
    principalType: adminPrincipalType
  }
}

resource adminIndexContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(indexContainer.id, adminPrincipalId, roles.storageBlobDataContributor)
  scope: indexContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: adminPrincipalId
    principalType: adminPrincipalType
  }
}

resource adminQuarantineContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(quarantineContainer.id, adminPrincipalId, roles.storageBlobDataContributor)
  scope: quarantineContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: adminPrincipalId
    principalType: adminPrincipalType
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs: azd stores them in the environment (the postdeploy hook reads them); deploy.sh prints
// them. Upper case, as azd expects.

output AZURE_LOCATION string = location
output AZURE_FUNCTION_APP_NAME string = functionApp.name
output FUNCTION_URL string = functionUrl
output PUBLIC_URL string = publicBaseUrl
output VAULT_URL string = vault.properties.vaultUri
output STORAGE_ACCOUNT_NAME string = storage.name
output STORAGE_BLOB_ENDPOINT string = storage.properties.primaryEndpoints.blob
output EVENT_GRID_SYSTEM_TOPIC_NAME string = systemTopic.name
// Entra ID sign-in (empty when entraAppRegistration is false): the scope clients ask tokens for
// (WHEELVAULT_KEYRING_INDEXES), and the ids `az rest` needs to assign the app roles.
output ENTRA_TENANT_ID string = entraTenantId
output ENTRA_CLIENT_ID string = entraAppRegistration ? entraApp.outputs.clientId : ''
output ENTRA_APP_ID_URI string = entraAppRegistration ? entraApp.outputs.identifierUri : ''
output ENTRA_SCOPE string = entraAppRegistration ? entraApp.outputs.scope : ''
output ENTRA_SERVICE_PRINCIPAL_ID string = entraAppRegistration ? entraApp.outputs.servicePrincipalId : ''
output ENTRA_ROLE_READ_ID string = entraAppRegistration ? entraApp.outputs.readRoleId : ''
output ENTRA_ROLE_PUBLISH_ID string = entraAppRegistration ? entraApp.outputs.publishRoleId : ''
