package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions, versions 0–5. A request for a newer version than eddy
// serves is answered in v0 form with UNSUPPORTED_VERSION (see unsupported).

func (b *Broker) handleApiVersions(_ *reqCtx, req *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys()
	return resp
}

// apiKeys lists supported in key order, as Kafka does.
func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(supported))
	for k, r := range supported {
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, r.min, r.max
		keys = append(keys, ak)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}
