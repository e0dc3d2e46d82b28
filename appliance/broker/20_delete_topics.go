package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// DeleteTopics, versions 0–6 (v6 may name topics by id).
//
// The answer comes once the deletion is committed to the meta shard; each
// node then stops its replicas and removes their files in the background.

func (b *Broker) handleDeleteTopics(ctx context.Context, rc *reqCtx, req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	for _, n := range req.TopicNames {
		targets = append(targets, target{name: strPtr(n)})
	}
	for _, t := range req.Topics {
		targets = append(targets, target{name: t.Topic, id: t.TopicID})
	}
	timeout := time.Duration(max(req.TimeoutMillis, 5000)) * time.Millisecond
	for _, tg := range targets {
		out := kmsg.NewDeleteTopicsResponseTopic()
		out.Topic, out.TopicID = tg.name, tg.id
		st := b.host.Meta()
		var topic *meta.Topic
		if tg.name != nil {
			// Refused before the lookup, so existence is not revealed.
			if err := b.checkTopic(rc, opDelete, *tg.name); err != nil {
				out.ErrorCode, out.ErrorMessage = kerr.TopicAuthorizationFailed.Code, errMessage(err)
				b.countError(rc, out.ErrorCode)
				resp.Topics = append(resp.Topics, out)
				continue
			}
			topic = st.Topics[*tg.name]
		} else {
			topic, _ = st.TopicByID(tg.id)
			// By id, Kafka also wants DESCRIBE, which DELETE implies.
			if topic != nil {
				if err := b.checkTopic(rc, opDelete, topic.Name); err != nil {
					out.ErrorCode, out.ErrorMessage = kerr.TopicAuthorizationFailed.Code, errMessage(err)
					b.countError(rc, out.ErrorCode)
					resp.Topics = append(resp.Topics, out)
					continue
				}
			}
		}
		if topic == nil {
			out.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if tg.name == nil {
				out.ErrorCode = kerr.UnknownTopicID.Code
			}
			b.countError(rc, out.ErrorCode)
			resp.Topics = append(resp.Topics, out)
			continue
		}
		out.Topic, out.TopicID = strPtr(topic.Name), topic.ID
		dctx, cancel := context.WithTimeout(ctx, timeout)
		err := b.host.ProposeMeta(dctx, meta.Command{DeleteTopic: &meta.DeleteTopic{Name: topic.Name}})
		cancel()
		if err != nil {
			out.ErrorCode = kafkaCode(err)
			out.ErrorMessage = errMessage(err)
			b.countError(rc, out.ErrorCode)
		} else {
			b.log.Info().Str("topic", topic.Name).Msg("deleted topic")
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp
}
