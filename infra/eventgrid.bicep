// The Event Grid subscription that delivers BlobCreated events from `uploads` to the
// `publish_upload` blob trigger (source=EventGrid). Deployed after the code: the webhook URL
// carries the blob extension's system key, which the Functions host creates on its first start
// with that trigger. infra/eventgrid.sh waits for the key, then deploys this file.

targetScope = 'resourceGroup'

@description('The function app (output AZURE_FUNCTION_APP_NAME of main.bicep).')
param functionAppName string

@description('The storage account (output STORAGE_ACCOUNT_NAME of main.bicep).')
param storageAccountName string

@description('The system topic of the storage account (output EVENT_GRID_SYSTEM_TOPIC_NAME of main.bicep).')
param systemTopicName string

@description('The blob-triggered Python function (its @function_name).')
param functionName string = 'publish_upload'

@description('Container the trigger watches (blob path uploads/{name}).')
param uploadsContainerName string = 'uploads'

@description('Container for events that could not be delivered (declared in main.bicep).')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes Event Grid keeps retrying an event.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// The Functions host of the app: its keys, including the blob extension's system key.
resource appHost 'Microsoft.Web/sites/host@2024-04-01' existing = {
  parent: functionApp
  name: 'default'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

// The system key the blob extension checks on every delivery. Read at deployment time, never
// written to an output.
var blobsExtensionKey = appHost.listKeys().systemKeys.blobs_extension

resource uploadsSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  // Subscription names allow letters, digits and hyphens only.
  name: replace('uploads-to-${functionName}', '_', '-')
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}&code=${blobsExtensionKey}'
        // One blob per request: each invocation publishes one upload.
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // Only the drop zone; the app's own writes to index and quarantine must not trigger it.
      subjectBeginsWith: '/blobServices/default/containers/${uploadsContainerName}/'
    }
    // Delivery is at least once and publishing is idempotent, so retry for up to a day.
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    // What still fails is kept, written with the topic's own identity (no storage keys).
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output EVENT_SUBSCRIPTION_NAME string = uploadsSubscription.name
