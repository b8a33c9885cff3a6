# The header's whole value, read by the config's os.environ/TOKENTRAIL_AUTHORIZATION:
export TOKENTRAIL_AUTHORIZATION="Bearer ${TOKENTRAIL_TOKEN:?a token from tokentrail token create}"
# The proxy refuses to start without a master key; clients send it (or keys made with it) as their API key.
export LITELLM_MASTER_KEY="${LITELLM_MASTER_KEY:?a secret of your choice, e.g. sk- and 32 hex digits}"
litellm --config litellm-proxy.yaml
