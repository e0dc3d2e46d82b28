package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs, versions 0–4, for topics and brokers. Broker configs
// are the node's static settings; topic configs show the override, the
// node's default or the built-in default, with Kafka's source codes.

func (b *Broker) handleDescribeConfigs(rc *reqCtx, req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	st := b.host.Meta()
	for _, r := range req.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = r.ResourceType, r.ResourceName
		var entries []configEntry
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if err := b.checkTopic(rc, opDescribeConfigs, r.ResourceName); err != nil {
				out.ErrorCode, out.ErrorMessage = kerr.TopicAuthorizationFailed.Code, errMessage(err)
				break
			}
			t, ok := st.Topics[r.ResourceName]
			if !ok {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
				out.ErrorMessage = strPtr(fmt.Sprintf("topic %q does not exist", r.ResourceName))
				break
			}
			entries = b.topicConfigEntries(t, r.ConfigNames)
		case kmsg.ConfigResourceTypeBroker:
			if err := b.checkCluster(rc, opDescribeConfigs); err != nil {
				out.ErrorCode, out.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, errMessage(err)
				break
			}
			if r.ResourceName != "" && r.ResourceName != fmt.Sprint(b.host.NodeID()) {
				out.ErrorCode = kerr.InvalidRequest.Code
				out.ErrorMessage = strPtr(fmt.Sprintf("this is broker %d; ask broker %s for its configs", b.host.NodeID(), r.ResourceName))
				break
			}
			entries = b.brokerConfigEntries(r.ConfigNames)
		default:
			out.ErrorCode = kerr.InvalidRequest.Code
			out.ErrorMessage = strPtr(fmt.Sprintf("eddy describes topic and broker configs, not resource type %d", r.ResourceType))
		}
		b.countError(rc, out.ErrorCode)
		for _, e := range entries {
			out.Configs = append(out.Configs, describeEntry(e, req))
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp
}

func describeEntry(e configEntry, req *kmsg.DescribeConfigsRequest) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.Value, c.ReadOnly = e.name, strPtr(e.value), e.readOnly
	c.Source = e.source
	c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
	c.ConfigType = kmsg.ConfigType(e.def.Type)
	if req.IncludeDocumentation && e.def.Doc != "" {
		c.Documentation = strPtr(e.def.Doc)
	}
	if req.IncludeSynonyms {
		c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(e.name, e.value, e.source))
		if e.source == kmsg.ConfigSourceDynamicTopicConfig && e.brokerName != "" {
			c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(e.brokerName, e.def.Default, kmsg.ConfigSourceDefaultConfig))
		}
	}
	return c
}

func synonym(name, value string, source kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, strPtr(value), source
	return s
}
