package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// IncrementalAlterConfigs, versions 0–1. SET and DELETE apply to topic
// configs; APPEND and SUBTRACT are for list-valued configs, of which eddy
// has none.

func (b *Broker) handleIncrementalAlterConfigs(ctx context.Context, rc *reqCtx, req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, r := range req.Resources {
		out := kmsg.NewIncrementalAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = r.ResourceType, r.ResourceName
		err := b.checkAlterConfigs(rc, r.ResourceType, r.ResourceName)
		if err == nil {
			err = b.incrementalAlter(ctx, r, req.ValidateOnly)
		}
		if err != nil {
			out.ErrorCode, out.ErrorMessage = kafkaCode(err), errMessage(err)
			b.countError(rc, out.ErrorCode)
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp
}

func (b *Broker) incrementalAlter(ctx context.Context, r kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	alter := &meta.AlterConfigs{Topic: r.ResourceName, Set: map[string]string{}}
	for _, c := range r.Configs {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return fmt.Errorf("%w: SET %s needs a value", kerr.InvalidConfig, c.Name)
			}
			alter.Set[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			alter.Delete = append(alter.Delete, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			return fmt.Errorf("%w: %s is not a list config; use SET", kerr.InvalidConfig, c.Name)
		default:
			return fmt.Errorf("%w: unknown operation %d on %s", kerr.InvalidRequest, c.Op, c.Name)
		}
	}
	return b.alterTopicConfigs(ctx, r.ResourceType, alter, validateOnly)
}
