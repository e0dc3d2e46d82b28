package broker

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// AlterConfigs, versions 0–2 (the legacy API: the given configs replace
// all of a topic's overrides). Broker configs are static: they are set in
// the node's config file, not through the protocol.

func (b *Broker) handleAlterConfigs(ctx context.Context, rc *reqCtx, req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, r := range req.Resources {
		out := kmsg.NewAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = r.ResourceType, r.ResourceName
		alter := &meta.AlterConfigs{Topic: r.ResourceName, Replace: true, Set: map[string]string{}}
		for _, c := range r.Configs {
			if c.Value != nil {
				alter.Set[c.Name] = *c.Value
			}
		}
		err := b.checkAlterConfigs(rc, r.ResourceType, r.ResourceName)
		if err == nil {
			err = b.alterTopicConfigs(ctx, r.ResourceType, alter, req.ValidateOnly)
		}
		if err != nil {
			out.ErrorCode, out.ErrorMessage = kafkaCode(err), errMessage(err)
			b.countError(rc, out.ErrorCode)
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp
}

// checkAlterConfigs: ALTER_CONFIGS on the topic, or on the cluster for
// broker resources.
func (b *Broker) checkAlterConfigs(rc *reqCtx, rt kmsg.ConfigResourceType, name string) error {
	if rt == kmsg.ConfigResourceTypeTopic {
		return b.checkTopic(rc, opAlterConfigs, name)
	}
	return b.checkCluster(rc, opAlterConfigs)
}

// alterTopicConfigs validates and, unless validateOnly, commits a config
// change. Only topic resources can be altered.
func (b *Broker) alterTopicConfigs(ctx context.Context, rt kmsg.ConfigResourceType, alter *meta.AlterConfigs, validateOnly bool) error {
	if rt != kmsg.ConfigResourceTypeTopic {
		return fmt.Errorf("%w: only topic configs can be altered; broker settings live in the node's config file", kerr.InvalidRequest)
	}
	t, ok := b.host.Meta().Topics[alter.Topic]
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, alter.Topic)
	}
	if err := meta.ValidateConfigs(alter.Set); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	for _, k := range alter.Delete {
		if _, ok := meta.ConfigDefs[k]; !ok && !meta.IsPluginConfigKey(k) {
			return fmt.Errorf("%w: unknown config %q (supported: %v)", kerr.InvalidConfig, k, meta.ConfigNames())
		}
	}
	next := map[string]string{}
	if !alter.Replace {
		maps.Copy(next, t.Configs)
	}
	maps.Copy(next, alter.Set)
	for _, k := range alter.Delete {
		delete(next, k)
	}
	if err := b.checkPluginSettings(ctx, next); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.host.ProposeMeta(cctx, meta.Command{AlterConfigs: alter}); err != nil {
		return err
	}
	b.log.Info().Str("topic", alter.Topic).Interface("set", alter.Set).Strs("deleted", alter.Delete).Msg("altered topic configs")
	return nil
}
