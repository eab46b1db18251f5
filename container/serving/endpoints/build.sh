#!/bin/sh
# Compile this folder's endpoints against multi-model-server's jar into endpoints.jar, the
# plugin that `serve` gives the server (plugins_path), and server/'s patched server class into
# server/classes, which `serve` puts first on the server's class path.
# usage: build.sh PYTHON   (the interpreter that has multi-model-server installed; needs a JDK)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${1:?usage: build.sh PYTHON}
mms_jar=$("$python" -c 'import mms, os; print(os.path.join(os.path.dirname(mms.__file__), "frontend", "model-server.jar"))')
classes=$(mktemp -d)
trap 'rm -rf "$classes"' EXIT
javac --release 17 -d "$classes" -cp "$mms_jar" "$here"/*.java
cp -r "$here/META-INF" "$classes/"
jar cf "$here/endpoints.jar" -C "$classes" .
rm -rf "$here/server/classes"
javac --release 17 -nowarn -d "$here/server/classes" -cp "$mms_jar" "$here"/server/*.java
