// wheelvault's Entra ID app registration: the API that access tokens are issued for, its two app
// roles, the delegated scope the Azure CLI (and Azure PowerShell, VS Code) may use without a
// consent prompt, its service principal (only assigned principals get tokens), and the operator's
// Packages.Publish assignment. Microsoft Graph resources (Bicep's Microsoft Graph extension, see
// bicepconfig.json); deployed by main.bicep as a module when entraAppRegistration is true.
//
// A module of its own because checkov's Bicep parser reads neither `extension` nor `deployer()`
// (and checkov has no checks for Microsoft.Graph types); tests/infra asserts this file instead.

extension microsoftGraphV1

@description('Unique name of the app registration (its uniqueName; part of the Application ID URI).')
@minLength(1)
@maxLength(120)
param appName string

@description('Display name shown in Entra ID.')
param displayName string

@description('Optional principal (the operator) assigned Packages.Publish; empty: nobody.')
param publisherPrincipalId string = ''

// The role values the front door maps to scopes (shared/core/entra.py ROLE_READ, ROLE_PUBLISH).
// Ids are derived from the app name so redeploying keeps them: changing a role's id would
// delete the role (and Graph refuses to delete an enabled one).
var readRoleValue = 'Packages.Read'
var publishRoleValue = 'Packages.Publish'
var readRoleId = guid(appName, readRoleValue)
var publishRoleId = guid(appName, publishRoleValue)
var scopeValue = 'user_impersonation'
var scopeId = guid(appName, scopeValue)

// api://{tenantId}/{string}: one of the secure Application ID URI forms (it names the tenant), so
// the default identifierUris restrictions accept it; api://{appId} cannot be given on create.
var identifierUri = 'api://${tenant().tenantId}/${appName}'

// Microsoft's own public clients (the same ids in every tenant), pre-authorized for the scope so
// their signed-in users get a token for this API without a consent prompt: the ones
// DefaultAzureCredential signs in through on a workstation. A token still needs an app role.
var preAuthorizedClients = {
  azureCli: '04b07795-8ddb-461a-bbee-02f9e1bf7b46' // az login (AzureCliCredential); azd uses it too
  azurePowerShell: '1950a258-227b-4e31-a9cf-717495945fc2' // Connect-AzAccount (AzurePowerShellCredential)
  visualStudioCode: 'aebc6443-996d-45c2-90f0-388ff96faa56' // VS Code sign-in (VisualStudioCodeCredential)
}

// Whoever deploys owns the registration, so the next deployment (and a service principal with
// only Application.ReadWrite.OwnedBy) may update it, and can manage its assignments.
var owner = deployer().objectId

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: appName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    identifierUri
  ]
  owners: {
    relationships: [
      owner
    ]
  }
  appRoles: [
    {
      id: readRoleId
      value: readRoleValue
      displayName: 'Read packages'
      description: 'Install packages from the wheelvault index.'
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
    {
      id: publishRoleId
      value: publishRoleValue
      displayName: 'Publish packages'
      description: 'Publish packages to the wheelvault index (and install them).'
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
  ]
  api: {
    // v2 access tokens: `aud` is the client id, the issuer ends in /v2.0.
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: scopeId
        value: scopeValue
        // Admin: a client that is not pre-authorized below needs an administrator's consent.
        type: 'Admin'
        adminConsentDisplayName: 'Access wheelvault'
        adminConsentDescription: 'Lets the app call the wheelvault package index as the signed-in user, with the wheelvault roles assigned to that user.'
        isEnabled: true
      }
    ]
    preAuthorizedApplications: [
      {
        appId: preAuthorizedClients.azureCli
        delegatedPermissionIds: [
          scopeId
        ]
      }
      {
        appId: preAuthorizedClients.azurePowerShell
        delegatedPermissionIds: [
          scopeId
        ]
      }
      {
        appId: preAuthorizedClients.visualStudioCode
        delegatedPermissionIds: [
          scopeId
        ]
      }
    ]
  }
}

// The app's identity in this tenant. Assignment required: Entra issues tokens for this API only
// to users, groups, managed identities and service principals assigned one of its roles.
resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
  appRoleAssignmentRequired: true
  owners: {
    relationships: [
      owner
    ]
  }
}

// The operator may publish with their own sign-in (as they may create publish tokens).
resource publisherAssignment 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (!empty(publisherPrincipalId)) {
  appRoleId: publishRoleId
  principalId: publisherPrincipalId
  resourceId: servicePrincipal.id
}

output clientId string = app.appId
output identifierUri string = identifierUri
output scope string = '${identifierUri}/.default'
output servicePrincipalId string = servicePrincipal.id
output readRoleId string = readRoleId
output publishRoleId string = publishRoleId
