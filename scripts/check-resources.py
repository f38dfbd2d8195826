#!/usr/bin/env python3
"""Checks that the resources on an emulator match what template.yaml declares.

Run after localstack/init.sh or `squaremcp init` (scripts/test does both), with the names they
used and the standard AWS endpoint variables:

    check-resources.py --table T --alias alias/A --retry-queue R --dead-letter-queue D

It compares the table (keys, attribute types, GSIs, billing, TTL), the KMS key behind the alias
(spec, usage, rotation) and the queues (retention, visibility, encryption, redrive) with the
template's properties, and exits 1 naming every difference.
"""
import argparse
import json
import os
import sys

import boto3
import yaml


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, …) as plain values."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


CfnLoader.add_multi_constructor("!", _tag)


def client(service):
    endpoint = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client(service, endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--template", default=os.path.join(os.path.dirname(__file__), "..", "template.yaml"))
    parser.add_argument("--table", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--retry-queue", required=True)
    parser.add_argument("--dead-letter-queue", required=True)
    args = parser.parse_args()
    with open(args.template) as f:
        resources = yaml.load(f, Loader=CfnLoader)["Resources"]
    problems = []

    def expect(what, actual, wanted):
        if actual != wanted:
            problems.append(f"{what}: the emulator has {actual!r}, template.yaml declares {wanted!r}")

    # The table.
    declared = resources["Table"]["Properties"]
    ddb = client("dynamodb")
    table = ddb.describe_table(TableName=args.table)["Table"]
    expect("table key schema", table["KeySchema"], declared["KeySchema"])
    expect(
        "table attribute definitions",
        sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        sorted(declared["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
    )
    expect("table billing mode", table.get("BillingModeSummary", {}).get("BillingMode"), declared["BillingMode"])
    indexes = [
        {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
        for i in table.get("GlobalSecondaryIndexes", [])
    ]
    expect("table GSIs", indexes, declared["GlobalSecondaryIndexes"])
    ttl = ddb.describe_time_to_live(TableName=args.table)["TimeToLiveDescription"]
    expect("TTL attribute", ttl.get("AttributeName"), declared["TimeToLiveSpecification"]["AttributeName"])
    expect("TTL status", ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"), declared["TimeToLiveSpecification"]["Enabled"])

    # The KMS key behind the alias.
    declared = resources["DataKeyWrappingKey"]["Properties"]
    kms = client("kms")
    key = kms.describe_key(KeyId=args.alias)["KeyMetadata"]
    expect("KMS key spec", key.get("KeySpec"), declared["KeySpec"])
    expect("KMS key usage", key.get("KeyUsage"), declared["KeyUsage"])
    rotation = kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    expect("KMS key rotation", rotation, declared["EnableKeyRotation"])

    # The queues.
    sqs = client("sqs")

    def attributes(name):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    dead_letter = attributes(args.dead_letter_queue)
    declared = resources["DeliveryDeadLetterQueue"]["Properties"]
    expect("DLQ retention", int(dead_letter["MessageRetentionPeriod"]), declared["MessageRetentionPeriod"])
    retry = attributes(args.retry_queue)
    declared = resources["DeliveryRetryQueue"]["Properties"]
    expect("retry queue visibility", int(retry["VisibilityTimeout"]), declared["VisibilityTimeout"])
    expect("retry queue retention", int(retry["MessageRetentionPeriod"]), declared["MessageRetentionPeriod"])
    for name, queue, props in (("retry queue", retry, declared), ("DLQ", dead_letter, resources["DeliveryDeadLetterQueue"]["Properties"])):
        if "SqsManagedSseEnabled" in queue:
            expect(f"{name} encryption", queue["SqsManagedSseEnabled"] == "true", props["SqsManagedSseEnabled"])
    redrive = json.loads(retry.get("RedrivePolicy", "{}"))
    expect("redrive target", redrive.get("deadLetterTargetArn"), dead_letter["QueueArn"])
    expect("redrive receive count", int(redrive.get("maxReceiveCount", 0)), declared["RedrivePolicy"]["maxReceiveCount"])

    if problems:
        print("resources differ from template.yaml:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"resources match template.yaml: table {args.table}, key {args.alias}, queues {args.retry_queue} and {args.dead_letter_queue}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
