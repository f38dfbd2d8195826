#!/usr/bin/env bash
# Creates exactly the stateful resources that template.yaml declares — the DynamoDB table, the
# KMS key and its alias, the webhook retry queue and its dead-letter queue — on an emulator,
# with plain AWS CLI calls. Idempotent: what exists is left alone.
#
# As a LocalStack "ready" hook, mount it into the container:
#   docker run --rm -p 127.0.0.1:4566:4566 \
#     -v "$PWD/localstack/init.sh:/etc/localstack/init/ready.d/squaremcp.sh" localstack/localstack
# By hand, or against other emulators (scripts/test runs it against DynamoDB Local and moto):
#   AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8765 AWS_ENDPOINT_URL_KMS=http://127.0.0.1:5765 \
#   AWS_ENDPOINT_URL_SQS=http://127.0.0.1:5765 localstack/init.sh
#
# Names (defaults match `squaremcp init` and the SQUAREMCP_* defaults):
#   SQUAREMCP_TABLE=squaremcp  SQUAREMCP_KMS_ALIAS=alias/squaremcp
#   SQUAREMCP_RETRY_QUEUE=squaremcp-delivery-retry  SQUAREMCP_DEAD_LETTER_QUEUE=squaremcp-delivery-dlq
# The first data key is not a template resource: `squaremcp init` creates it afterwards.
set -euo pipefail

endpoint="${AWS_ENDPOINT_URL:-http://localhost:4566}"
ddb=(--endpoint-url "${AWS_ENDPOINT_URL_DYNAMODB:-$endpoint}")
kms=(--endpoint-url "${AWS_ENDPOINT_URL_KMS:-$endpoint}")
# The AWS CLI v1 ignores AWS_ENDPOINT_URL for SQS: always pass it explicitly.
sqs=(--endpoint-url "${AWS_ENDPOINT_URL_SQS:-$endpoint}")
table="${SQUAREMCP_TABLE:-squaremcp}"
alias_name="${SQUAREMCP_KMS_ALIAS:-alias/squaremcp}"
retry="${SQUAREMCP_RETRY_QUEUE:-squaremcp-delivery-retry}"
dead_letter="${SQUAREMCP_DEAD_LETTER_QUEUE:-squaremcp-delivery-dlq}"
aws="${AWS_CLI:-aws}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}" AWS_PAGER=""

say() { printf 'localstack/init.sh: %s\n' "$*"; }

# Table: on-demand, PK/SK, GSI1 (all attributes), TTL on expires_at, point-in-time recovery.
if "$aws" "${ddb[@]}" dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then
  say "table $table exists"
else
  "$aws" "${ddb[@]}" dynamodb create-table --table-name "$table" \
    --billing-mode PAY_PER_REQUEST \
    --attribute-definitions AttributeName=PK,AttributeType=S AttributeName=SK,AttributeType=S \
      AttributeName=GSI1PK,AttributeType=S AttributeName=GSI1SK,AttributeType=S \
    --key-schema AttributeName=PK,KeyType=HASH AttributeName=SK,KeyType=RANGE \
    --global-secondary-indexes \
      'IndexName=GSI1,KeySchema=[{AttributeName=GSI1PK,KeyType=HASH},{AttributeName=GSI1SK,KeyType=RANGE}],Projection={ProjectionType=ALL}' \
    --sse-specification Enabled=true >/dev/null
  "$aws" "${ddb[@]}" dynamodb wait table-exists --table-name "$table"
  say "created table $table"
fi
"$aws" "${ddb[@]}" dynamodb update-time-to-live --table-name "$table" \
  --time-to-live-specification Enabled=true,AttributeName=expires_at >/dev/null 2>&1 || true
"$aws" "${ddb[@]}" dynamodb update-continuous-backups --table-name "$table" \
  --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true >/dev/null 2>&1 \
  || say "point-in-time recovery is not supported by this emulator"

# KMS key (symmetric, yearly rotation) and its alias.
if "$aws" "${kms[@]}" kms describe-key --key-id "$alias_name" >/dev/null 2>&1; then
  say "key $alias_name exists"
else
  key_id=$("$aws" "${kms[@]}" kms create-key --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT \
    --description "SquareMCP: wraps the data keys that encrypt customer credentials" \
    --query KeyMetadata.KeyId --output text)
  "$aws" "${kms[@]}" kms create-alias --alias-name "$alias_name" --target-key-id "$key_id"
  "$aws" "${kms[@]}" kms enable-key-rotation --key-id "$key_id"
  say "created key $alias_name ($key_id)"
fi

# Queues: the dead-letter queue first, then the retry queue redriving to it after 4 receives.
dead_letter_url=$("$aws" "${sqs[@]}" sqs create-queue --queue-name "$dead_letter" \
  --attributes MessageRetentionPeriod=1209600,SqsManagedSseEnabled=true --query QueueUrl --output text)
dead_letter_arn=$("$aws" "${sqs[@]}" sqs get-queue-attributes --queue-url "$dead_letter_url" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)
redrive="{\"deadLetterTargetArn\":\"$dead_letter_arn\",\"maxReceiveCount\":\"4\"}"
attributes=$(printf '{"VisibilityTimeout":"60","MessageRetentionPeriod":"345600","SqsManagedSseEnabled":"true","RedrivePolicy":%s}' \
  "$(printf '%s' "$redrive" | sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$/"/')")
retry_url=$("$aws" "${sqs[@]}" sqs create-queue --queue-name "$retry" --attributes "$attributes" \
  --query QueueUrl --output text 2>/dev/null) || {
  # It exists with other attributes: bring them in line.
  retry_url=$("$aws" "${sqs[@]}" sqs get-queue-url --queue-name "$retry" --query QueueUrl --output text)
  "$aws" "${sqs[@]}" sqs set-queue-attributes --queue-url "$retry_url" --attributes "$attributes"
}
say "queues ready: SQUAREMCP_RETRY_QUEUE_URL=$retry_url SQUAREMCP_DEAD_LETTER_QUEUE_URL=$dead_letter_url"
