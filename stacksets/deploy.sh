#!/usr/bin/env bash
# Deploys org-security-logs to an AWS Organization with the AWS CLI (v2), the steps of
# stacksets/README.md in order:
#
#   1. package the Lambdas (scripts/package) unless --skip-package
#   2. one artifact bucket per region in the management account, readable by the organization,
#      and the zips uploaded under a versioned key
#   3. the central stack (central.yaml) in the log archive account
#   4. the organization trail (org-trail.yaml) in the management account, unless --no-trail
#   5. the member StackSet (member.yaml), SERVICE_MANAGED with automatic deployment, on the OUs
#      and regions given; an existing stack set is updated instead, every parameter not given
#      keeping its previous value
#   6. with --sources, the optional sources StackSet (member-sources.yaml) the same way
#
# Prerequisites: AWS CLI v2 with the profiles named below, bash, and for step 1 what
# scripts/package needs (cargo and the Rust targets of --arch, python3 with venv, objdump, zip
# tools; see stacksets/README.md section 0).
#
#   stacksets/deploy.sh --org-id o-xxxx --ous ou-aaaa,ou-bbbb --regions eu-west-1,us-east-1 \
#       --central-profile log-archive [--management-profile mgmt] [options]
#   stacksets/deploy.sh --remove --ous ... --regions ... --central-profile ... [--management-profile ...]
#
# Options:
#   --central-region R       region of the central stack (default: first of --regions)
#   --name-prefix P          NamePrefix of every stack (default org-security-logs)
#   --artifact-prefix P      artifact buckets are P-<region> (default <name-prefix>-artifacts-<mgmt account>)
#   --arch x86_64|arm64      which zips to deploy (default x86_64)
#   --opensearch-endpoint U  existing OpenSearch endpoint for the loader
#   --opensearch-domain N    its Amazon OpenSearch Service domain name (SigV4 grant)
#   --opensearch-auth A      sigv4 (default of the template), basic or none
#   --opensearch-secret-arn S  with basic: the Secrets Manager secret (JSON username, password)
#   --create-domain          create a new OpenSearch domain instead
#   --alert-email E          subscribe E to the alert topic
#   --call-as DELEGATED_ADMIN  run the StackSet steps from a delegated administrator account
#   --central-parameters F   extra Key=Value lines for central.yaml (LogBucketName, lifecycle days,
#                            ObjectLockMode, LoaderMemorySize, LoaderBatchSize, ...); on an update,
#                            parameters not given keep their values
#   --member-parameters F    extra ParameterKey=...,ParameterValue=... lines for member.yaml
#   --rename-filter          allow a FilterName different from the deployed one: every member
#                            account then removes the filters of the old name and puts the new one
#                            on every log group
#   --sources                also deploy member-sources.yaml as the stack set <name-prefix>-sources
#   --sources-parameters F   ParameterKey=...,ParameterValue=... lines for it (VpcIds, WebAclArn, ...)
#   --sources-accounts A,B   its instances: only these accounts of --ous (default: every account)
#   --add-targets            on an existing stack set, also create instances for --ous/--regions
#                            (new OUs or regions); without it only the existing instances are updated
#   --skip-package           use the zips already in target/lambda-dist
#   --dist DIR               the zips are DIR/{collector,subscriber,loader}.zip
#   --no-trail               do not deploy the organization trail
#   --dry-run                print the AWS CLI calls instead of running them
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

org_id="" ous="" regions="" central_region="" central_profile="" management_profile=""
name_prefix="org-security-logs" artifact_prefix="" arch="x86_64"
os_endpoint="" os_domain="" create_domain="false" alert_email="" call_as="SELF"
member_parameters="" add_targets=false skip_package=false trail=true dry_run=false remove=false
os_auth="" os_secret="" central_parameters="" rename_filter=false sources=false
sources_parameters="" sources_accounts="" dist=""

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }
die() { printf 'deploy.sh: %s\n' "$*" >&2; exit 1; }
log() { printf '[deploy] %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --org-id) org_id=$2; shift 2 ;;
    --ous) ous=$2; shift 2 ;;
    --regions) regions=$2; shift 2 ;;
    --central-region) central_region=$2; shift 2 ;;
    --central-profile) central_profile=$2; shift 2 ;;
    --management-profile) management_profile=$2; shift 2 ;;
    --name-prefix) name_prefix=$2; shift 2 ;;
    --artifact-prefix) artifact_prefix=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --opensearch-endpoint) os_endpoint=$2; shift 2 ;;
    --opensearch-domain) os_domain=$2; shift 2 ;;
    --opensearch-auth) os_auth=$2; shift 2 ;;
    --opensearch-secret-arn) os_secret=$2; shift 2 ;;
    --create-domain) create_domain=true; shift ;;
    --alert-email) alert_email=$2; shift 2 ;;
    --call-as) call_as=$2; shift 2 ;;
    --central-parameters) central_parameters=$2; shift 2 ;;
    --member-parameters) member_parameters=$2; shift 2 ;;
    --rename-filter) rename_filter=true; shift ;;
    --sources) sources=true; shift ;;
    --sources-parameters) sources_parameters=$2; shift 2 ;;
    --sources-accounts) sources_accounts=$2; shift 2 ;;
    --dist) dist=$2; shift 2 ;;
    --add-targets) add_targets=true; shift ;;
    --skip-package) skip_package=true; shift ;;
    --no-trail) trail=false; shift ;;
    --dry-run) dry_run=true; shift ;;
    --remove) remove=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[ -n "$ous" ] || die "--ous is required (comma-separated organizational unit ids)"
[ -n "$regions" ] || die "--regions is required (comma-separated)"
[ -n "$central_profile" ] || die "--central-profile is required (AWS CLI profile of the log archive account)"
case "$arch" in x86_64|arm64) ;; *) die "--arch must be x86_64 or arm64" ;; esac
case "$os_auth" in ""|sigv4|basic|none) ;; *) die "--opensearch-auth must be sigv4, basic or none" ;; esac
[ "$os_auth" != basic ] || [ -n "$os_secret" ] || die "--opensearch-auth basic needs --opensearch-secret-arn"
for f in "$central_parameters" "$member_parameters" "$sources_parameters"; do
  [ -z "$f" ] || [ -r "$f" ] || die "cannot read parameter file $f"
done
IFS=, read -r -a region_list <<<"$regions"
IFS=, read -r -a ou_list <<<"$ous"
central_region=${central_region:-${region_list[0]}}

# Runs an AWS CLI call in the management (or delegated administrator) account.
mgmt() {
  if $dry_run; then printf '+ aws%s %s\n' "${management_profile:+ --profile $management_profile}" "$*" >&2; return; fi
  aws ${management_profile:+--profile "$management_profile"} "$@"
}
# Runs an AWS CLI call in the log archive account.
central() {
  if $dry_run; then printf '+ aws --profile %s %s\n' "$central_profile" "$*" >&2; return; fi
  aws --profile "$central_profile" "$@"
}
# Reads a value from the management account, or a placeholder in a dry run.
mgmt_query() {
  if $dry_run; then echo "<$1>"; return; fi
  shift
  aws ${management_profile:+--profile "$management_profile"} "$@"
}

management_account=$(mgmt_query management-account sts get-caller-identity --query Account --output text)
if [ -z "$org_id" ]; then
  org_id=$(mgmt_query org-id organizations describe-organization --query Organization.Id --output text)
fi
artifact_prefix=${artifact_prefix:-$name_prefix-artifacts-$management_account}
stack_set="$name_prefix-members"

wait_operation() {
  local operation=$1 set=${2:-$stack_set}
  $dry_run && return
  while :; do
    local status
    status=$(mgmt cloudformation describe-stack-set-operation --call-as "$call_as" \
      --stack-set-name "$set" --operation-id "$operation" \
      --query StackSetOperation.Status --output text)
    case "$status" in
      SUCCEEDED) log "operation $operation succeeded"; return ;;
      RUNNING|QUEUED) sleep 15 ;;
      *) die "stack set operation $operation ended $status; see list-stack-set-operation-results" ;;
    esac
  done
}

if $remove; then
  log "removing the stack instances of $stack_set from OUs ${ou_list[*]} in ${region_list[*]}"
  operation=$(mgmt cloudformation delete-stack-instances --call-as "$call_as" \
    --stack-set-name "$stack_set" --deployment-targets "OrganizationalUnitIds=$ous" \
    --regions "${region_list[@]}" --no-retain-stacks --query OperationId --output text)
  wait_operation "$operation"
  mgmt cloudformation delete-stack-set --call-as "$call_as" --stack-set-name "$stack_set"
  if $sources; then
    log "removing the stack instances of $name_prefix-sources"
    operation=$(mgmt cloudformation delete-stack-instances --call-as "$call_as" \
      --stack-set-name "$name_prefix-sources" --deployment-targets "OrganizationalUnitIds=$ous" \
      --regions "${region_list[@]}" --no-retain-stacks --query OperationId --output text)
    wait_operation "$operation" "$name_prefix-sources"
    mgmt cloudformation delete-stack-set --call-as "$call_as" --stack-set-name "$name_prefix-sources"
  fi
  if $trail; then
    mgmt cloudformation delete-stack --region "$central_region" --stack-name "$name_prefix-org-trail"
  fi
  central cloudformation delete-stack --region "$central_region" --stack-name "$name_prefix-central"
  log "removed; the log bucket and its KMS key are retained (DeletionPolicy Retain): delete them by hand once the logs are no longer needed"
  exit 0
fi

# 1. package
if ! $skip_package; then
  if $dry_run; then echo "+ scripts/package --arch $arch" >&2; else "$root/scripts/package" --arch "$arch"; fi
fi
dist=${dist:-$root/target/lambda-dist/$arch}
if ! $dry_run; then
  for f in collector subscriber loader; do
    [ -f "$dist/$f.zip" ] || die "$dist/$f.zip missing: run scripts/package"
  done
fi
# A new key per build, so CloudFormation sees a change and updates the functions.
if $dry_run; then version="<build>"; else
  version=$(cat "$dist"/*.zip | sha256sum | cut -c1-12)
fi
key_prefix="org-security-logs/$version/$arch"

# 2. artifact buckets, one per region (Lambda reads code from its own region)
all_regions=("${region_list[@]}")
[[ " ${region_list[*]} " == *" $central_region "* ]] || all_regions+=("$central_region")
for region in "${all_regions[@]}"; do
  bucket="$artifact_prefix-$region"
  if ! $dry_run && mgmt s3api head-bucket --bucket "$bucket" --region "$region" 2>/dev/null; then
    log "artifact bucket $bucket exists"
  else
    log "creating artifact bucket $bucket"
    if [ "$region" = us-east-1 ]; then
      mgmt s3api create-bucket --bucket "$bucket" --region "$region" >/dev/null
    else
      mgmt s3api create-bucket --bucket "$bucket" --region "$region" \
        --create-bucket-configuration "LocationConstraint=$region" >/dev/null
    fi
    mgmt s3api put-public-access-block --bucket "$bucket" --region "$region" \
      --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
  fi
  # The organization's accounts (their CloudFormation execution roles) read the code; TLS only.
  policy='{"Version":"2012-10-17","Statement":['
  policy+='{"Sid":"OrganizationReadsCode","Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject",'
  policy+="\"Resource\":\"arn:aws:s3:::$bucket/*\",\"Condition\":{\"StringEquals\":{\"aws:PrincipalOrgID\":\"$org_id\"}}},"
  policy+='{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*",'
  policy+="\"Resource\":[\"arn:aws:s3:::$bucket\",\"arn:aws:s3:::$bucket/*\"],\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}]}"
  mgmt s3api put-bucket-policy --bucket "$bucket" --region "$region" --policy "$policy"
  for f in collector subscriber loader; do
    mgmt s3 cp "$dist/$f.zip" "s3://$bucket/$key_prefix/$f.zip" --region "$region" --only-show-errors
  done
done

# 3. central stack
log "deploying the central stack $name_prefix-central in $central_region"
# `cloudformation deploy` keeps the current value of every parameter not named here, so only
# what was asked for is passed (never a default that would undo an earlier choice).
central_overrides=(
  "OrganizationId=$org_id" "ManagementAccountId=$management_account" "NamePrefix=$name_prefix"
  "ArtifactBucket=$artifact_prefix-$central_region" "LoaderCodeKey=$key_prefix/loader.zip"
  "Architecture=$arch"
)
if $create_domain; then central_overrides+=("CreateOpenSearchDomain=true"); fi
[ -n "$os_endpoint" ] && central_overrides+=("OpenSearchEndpoint=$os_endpoint")
[ -n "$os_domain" ] && central_overrides+=("OpenSearchDomainName=$os_domain")
[ -n "$os_auth" ] && central_overrides+=("OpenSearchAuth=$os_auth")
[ -n "$os_secret" ] && central_overrides+=("OpenSearchBasicAuthSecret=$os_secret")
[ -n "$alert_email" ] && central_overrides+=("AlertEmail=$alert_email")
if [ -n "$central_parameters" ]; then
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; *=*) central_overrides+=("$line") ;;
      *) die "$central_parameters: not a Key=Value line: $line" ;; esac
  done <"$central_parameters"
fi
central cloudformation deploy --region "$central_region" --stack-name "$name_prefix-central" \
  --template-file "$here/central.yaml" --capabilities CAPABILITY_NAMED_IAM \
  --no-fail-on-empty-changeset --parameter-overrides "${central_overrides[@]}"

central_output() {
  if $dry_run; then echo "<$1>"; return; fi
  central cloudformation describe-stacks --region "$central_region" --stack-name "$name_prefix-central" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
bucket_name=$(central_output LogBucketName)
key_arn=$(central_output LogKeyArn)
pipeline_log_groups=$(central_output PipelineLogGroups)
alert_bus_arn=$(central_output AlertBusArn)
central_account=$(if $dry_run; then echo "<central-account>"; else
  central sts get-caller-identity --query Account --output text; fi)

# 4. organization trail
if $trail; then
  log "deploying the organization trail"
  mgmt organizations enable-aws-service-access --service-principal cloudtrail.amazonaws.com
  mgmt cloudformation deploy --region "$central_region" --stack-name "$name_prefix-org-trail" \
    --template-file "$here/org-trail.yaml" --no-fail-on-empty-changeset \
    --parameter-overrides "CentralBucketName=$bucket_name" "KmsKeyArn=$key_arn" "TrailName=$name_prefix"
fi

# 5. member StackSet
member_params=(
  "ParameterKey=NamePrefix,ParameterValue=$name_prefix"
  "ParameterKey=CentralBucketName,ParameterValue=$bucket_name"
  "ParameterKey=CentralBucketAccountId,ParameterValue=$central_account"
  "ParameterKey=KmsKeyArn,ParameterValue=$key_arn"
  "ParameterKey=ArtifactBucketPrefix,ParameterValue=$artifact_prefix"
  "ParameterKey=CollectorCodeKey,ParameterValue=$key_prefix/collector.zip"
  "ParameterKey=SubscriberCodeKey,ParameterValue=$key_prefix/subscriber.zip"
  "ParameterKey=Architecture,ParameterValue=$arch"
  "ParameterKey=PipelineLogGroups,ParameterValue=$pipeline_log_groups"
  "ParameterKey=CentralAlertBusArn,ParameterValue=$alert_bus_arn"
)
read_parameter_file() {
  local file=$1 line
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; ParameterKey=*) printf '%s\n' "$line" ;;
      *) die "$file: not a ParameterKey=...,ParameterValue=... line: $line" ;; esac
  done <"$file"
}
if [ -n "$member_parameters" ]; then
  while IFS= read -r line; do member_params+=("$line"); done < <(read_parameter_file "$member_parameters")
fi

# The key of a ParameterKey=K,ParameterValue=V line.
param_key() { local k=${1#ParameterKey=}; printf '%s' "${k%%,*}"; }
# The value of K in a list of such lines, if given.
param_value() {
  local key=$1 line; shift
  for line in "$@"; do
    if [ "$(param_key "$line")" = "$key" ]; then printf '%s' "${line#*,ParameterValue=}"; return 0; fi
  done
  return 1
}

# Creates or updates one SERVICE_MANAGED stack set. On an update, UpdateStackSet would reset every
# parameter it is not given to the template's default, so each deployed parameter not in the
# list keeps its previous value; a FilterName change needs --rename-filter. Sets created=true
# when the stack set is new (its instances are then still to be made).
deploy_stack_set() {
  local set=$1 template=$2 auto=$3; shift 3
  local params=("$@") exists=false previous="" line
  if ! $dry_run && mgmt cloudformation describe-stack-set --call-as "$call_as" --stack-set-name "$set" >/dev/null 2>&1; then
    exists=true
  fi
  if $exists; then
    previous=$(mgmt cloudformation describe-stack-set --call-as "$call_as" --stack-set-name "$set" \
      --query 'StackSet.Parameters[].[ParameterKey,ParameterValue]' --output text)
    local given_filter old_filter
    if given_filter=$(param_value FilterName "${params[@]}"); then
      old_filter=$(awk -F '\t' '$1 == "FilterName" { print $2 }' <<<"$previous")
      if [ -n "$old_filter" ] && [ "$old_filter" != "$given_filter" ] && ! $rename_filter; then
        die "FilterName would change from '$old_filter' to '$given_filter': every member account would remove the filters named '$old_filter' from all its log groups and put '$given_filter' instead. Pass --rename-filter to do that."
      fi
    fi
    while IFS=$'\t' read -r key _; do
      [ -n "$key" ] || continue
      param_value "$key" "${params[@]}" >/dev/null || params+=("ParameterKey=$key,UsePreviousValue=true")
    done <<<"$previous"
    log "updating stack set $set"
    operation=$(mgmt cloudformation update-stack-set --call-as "$call_as" --stack-set-name "$set" \
      --template-body "file://$here/$template" --capabilities CAPABILITY_NAMED_IAM \
      --parameters "${params[@]}" --operation-preferences "$operation_preferences" \
      --query OperationId --output text)
    wait_operation "$operation" "$set"
    created=false
    return
  fi
  log "creating stack set $set"
  mgmt cloudformation create-stack-set --call-as "$call_as" --stack-set-name "$set" \
    --template-body "file://$here/$template" --capabilities CAPABILITY_NAMED_IAM \
    --permission-model SERVICE_MANAGED \
    --auto-deployment "$auto" \
    --managed-execution Active=true \
    --parameters "${params[@]}" >/dev/null
  created=true
}

mgmt cloudformation activate-organizations-access
operation_preferences="RegionConcurrencyType=PARALLEL,FailureTolerancePercentage=10,MaxConcurrentPercentage=25"
deploy_stack_set "$stack_set" member.yaml Enabled=true,RetainStacksOnAccountRemoval=false "${member_params[@]}"
if $created; then add_targets=true; fi
if $add_targets; then
  log "deploying stack instances to OUs ${ou_list[*]} in ${region_list[*]}"
  operation=$(mgmt cloudformation create-stack-instances --call-as "$call_as" --stack-set-name "$stack_set" \
    --deployment-targets "OrganizationalUnitIds=$ous" --regions "${region_list[@]}" \
    --operation-preferences "$operation_preferences" --query OperationId --output text)
  wait_operation "$operation"
fi
log "done: every account of ${ou_list[*]} (and every account that joins them) runs the collector and subscriber in ${region_list[*]}"

# 6. optional sources StackSet (VPC Flow Logs, WAF); per-account values as instance overrides
if $sources; then
  sources_set="$name_prefix-sources"
  sources_params=(
    "ParameterKey=NamePrefix,ParameterValue=$name_prefix"
    "ParameterKey=CentralBucketName,ParameterValue=$bucket_name"
    "ParameterKey=KmsKeyArn,ParameterValue=$key_arn"
  )
  if [ -n "$sources_parameters" ]; then
    while IFS= read -r line; do sources_params+=("$line"); done < <(read_parameter_file "$sources_parameters")
  fi
  deploy_stack_set "$sources_set" member-sources.yaml Enabled=false "${sources_params[@]}"
  if $created || $add_targets; then
    targets="OrganizationalUnitIds=$ous"
    [ -n "$sources_accounts" ] && targets+=",Accounts=$sources_accounts,AccountFilterType=INTERSECTION"
    log "deploying $sources_set instances to $targets in ${region_list[*]}"
    operation=$(mgmt cloudformation create-stack-instances --call-as "$call_as" --stack-set-name "$sources_set" \
      --deployment-targets "$targets" --regions "${region_list[@]}" \
      --operation-preferences "$operation_preferences" --query OperationId --output text)
    wait_operation "$operation" "$sources_set"
  fi
fi
