# bench/lib.sh: what the bench scripts share (run.sh, scale.sh, wire.sh).

# kilnet_conf FILE GEMINI-PORT GOPHER-PORT CERT-DIR DATASET [SETTING...]: a
# config for a benched kilnet: loopback ports, the repo's capsule, no access log
# (the peers write none either), the dataset included; each SETTING is one
# more line in the server group (e.g. "workers = 1;").
kilnet_conf() {
	local file=$1 gem=$2 goph=$3 certs=$4 ds=$5 line
	shift 5
	{
		echo "server = {"
		echo "  hostnames = [ \"localhost\" ];"
		echo "  gemini = { listen = [ \"127.0.0.1:$gem\" ]; };"
		echo "  gopher = { listen = [ \"127.0.0.1:$goph\" ]; };"
		echo "  cert_dir = \"$certs\";"
		echo "  capsule = \"$ROOT/capsule\";"
		echo "  access_log = \"off\";"
		for line in "$@"; do
			echo "  $line"
		done
		echo "};"
		echo "@include \"$ds\""
	} >"$file"
}
