#!/usr/bin/env bash
# Start a real S3 server: s3proxy (org.gaul:s3proxy from Maven Central, the
# jar-with-dependencies) with the jclouds filesystem backend, on 127.0.0.1. The test
# suite starts the same server; developers can point an archive at it by hand. Needs
# Maven (first run only: the ~40 MB jar is cached in ~/.m2) and Java 17 or newer.
#
#   tools/s3proxy/run-s3proxy.sh [DATA_DIR]
#
# Environment: S3PROXY_PORT (default 8081), S3PROXY_IDENTITY and S3PROXY_CREDENTIAL
# (the access key and secret it accepts; default local-identity / local-credential),
# S3PROXY_JAVA_OPTS (extra JVM flags), JAVA (a java >= 17). Buckets are folders of
# DATA_DIR (default: a new temporary folder). Once it logs "Started Server":
#   export AWS_ENDPOINT_URL=http://127.0.0.1:8081 AWS_ACCESS_KEY_ID=local-identity \
#          AWS_SECRET_ACCESS_KEY=local-credential AWS_DEFAULT_REGION=us-east-1
#   aws s3 mb s3://museum   # or any S3 client
#   ARCHIVE_STORAGE_URL=s3://museum/pyramids archive ingest collections_data/*/
set -euo pipefail

version="2.6.0"
data="${1:-$(mktemp -d -t archive-s3proxy.XXXXXX)}"
port="${S3PROXY_PORT:-8081}"
java="${JAVA:-java}"
repo="${M2_REPO:-$HOME/.m2/repository}"
jar="$repo/org/gaul/s3proxy/$version/s3proxy-$version-jar-with-dependencies.jar"

if [[ ! -s "$jar" ]]; then
  mvn -q -B dependency:get -Dartifact="org.gaul:s3proxy:$version:jar:jar-with-dependencies" \
      -Dtransitive=false >&2
fi
mkdir -p "$data"
conf="$data.properties"
cat >"$conf" <<CONF
s3proxy.endpoint=http://127.0.0.1:$port
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=${S3PROXY_IDENTITY:-local-identity}
s3proxy.credential=${S3PROXY_CREDENTIAL:-local-credential}
jclouds.provider=filesystem
jclouds.filesystem.basedir=$data
CONF
echo "s3proxy $version on http://127.0.0.1:$port, buckets in $data" >&2
# shellcheck disable=SC2086
exec "$java" ${S3PROXY_JAVA_OPTS:-} -jar "$jar" --properties "$conf"
