/* kp_admin.c - what kpool asks the cluster: topics, partition counts,
 * group offsets and lag, through librdkafka's Admin API. */
#include "kp_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How much longer than the request's own timeout we wait for its result
 * event: librdkafka reports the timeout itself, with its own text. */
#define ADMIN_GRACE_MS 2000

int kp_admin_ping(rd_kafka_t *rk, int timeout_ms, char *errstr,
                  size_t errstr_size) {
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t err;

        /* No topic named: only the brokers are asked for. */
        err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
        if (err) {
                snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(err));
                return -1;
        }
        rd_kafka_metadata_destroy(md);
        return 0;
}

/* Options for one admin call of type `op` bounded by timeout_ms. */
static rd_kafka_AdminOptions_t *
admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op, int timeout_ms) {
        rd_kafka_AdminOptions_t *options;
        char ignored[256];

        options = rd_kafka_AdminOptions_new(rk, op);
        rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, ignored,
                                                  sizeof(ignored));
        return options;
}

/* Waits for the result of the request that reports to rkqu. Returns the
 * event (caller destroys it), or NULL with the request's error in errstr
 * (prefixed by what). */
static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Set when a request failed with an error that passes by itself: the
 * group coordinator is still loading (a fresh broker) or moving. */
static int admin_transient;

static void note_error(rd_kafka_resp_err_t err) {
        if (err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
            err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE ||
            err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR)
                admin_transient = 1;
}

static rd_kafka_event_t *admin_result(rd_kafka_queue_t *rkqu, int timeout_ms,
                                      const char *what, char *errstr,
                                      size_t errstr_size) {
        rd_kafka_event_t *rkev;

        rkev = rd_kafka_queue_poll(rkqu, timeout_ms + ADMIN_GRACE_MS);
        if (!rkev) {
                snprintf(errstr, errstr_size, "%s: no answer within %d ms",
                         what, timeout_ms);
                return NULL;
        }
        if (rd_kafka_event_error(rkev)) {
                note_error(rd_kafka_event_error(rkev));
                snprintf(errstr, errstr_size, "%s: %s", what,
                         rd_kafka_event_error_string(rkev));
                rd_kafka_event_destroy(rkev);
                return NULL;
        }
        return rkev;
}

int kp_admin_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms,
                              char *errstr, size_t errstr_size) {
        const rd_kafka_TopicDescription_t **descs;
        const rd_kafka_error_t *error;
        rd_kafka_TopicCollection_t *topics;
        rd_kafka_AdminOptions_t *options;
        rd_kafka_queue_t *rkqu;
        rd_kafka_event_t *rkev;
        char what[300];
        size_t ndescs, nparts;
        int ret = -1;

        /* DescribeTopics, unlike a metadata request for one topic, never
         * auto-creates the topic on clusters that allow it. */
        rkqu = rd_kafka_queue_new(rk);
        topics = rd_kafka_TopicCollection_of_topic_names(&topic, 1);
        options =
            admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBETOPICS, timeout_ms);
        rd_kafka_DescribeTopics(rk, topics, options, rkqu);
        rd_kafka_AdminOptions_destroy(options);
        rd_kafka_TopicCollection_destroy(topics);

        snprintf(what, sizeof(what), "describing topic %s", topic);
        rkev = admin_result(rkqu, timeout_ms, what, errstr, errstr_size);
        if (!rkev)
                goto out;

        descs = rd_kafka_DescribeTopics_result_topics(
            rd_kafka_event_DescribeTopics_result(rkev), &ndescs);
        if (ndescs != 1) {
                snprintf(errstr, errstr_size, "%s: %zu answers, expected 1",
                         what, ndescs);
                goto out;
        }

        error = rd_kafka_TopicDescription_error(descs[0]);
        if (error && rd_kafka_error_code(error) ==
                         RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                snprintf(errstr, errstr_size, "topic %s does not exist", topic);
                ret = 0;
                goto out;
        }
        if (error && rd_kafka_error_code(error)) {
                note_error(rd_kafka_error_code(error));
                snprintf(errstr, errstr_size, "%s: %s", what,
                         rd_kafka_error_string(error));
                goto out;
        }

        if (!rd_kafka_TopicDescription_partitions(descs[0], &nparts) ||
            nparts == 0) {
                snprintf(errstr, errstr_size, "topic %s has no partitions",
                         topic);
                goto out;
        }
        ret = (int)nparts;

out:
        if (rkev)
                rd_kafka_event_destroy(rkev);
        rd_kafka_queue_destroy(rkqu);
        return ret;
}

int kp_admin_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                             char *errstr, size_t errstr_size) {
        int n = kp_admin_topic_partitions(rk, topic, timeout_ms, errstr,
                                          errstr_size);

        return n > 0 ? n : -1;
}

int kp_admin_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
                          int replication, int timeout_ms, char *errstr,
                          size_t errstr_size) {
        const rd_kafka_topic_result_t **results;
        rd_kafka_AdminOptions_t *options;
        rd_kafka_NewTopic_t *newt;
        rd_kafka_resp_err_t err;
        rd_kafka_queue_t *rkqu;
        rd_kafka_event_t *rkev;
        char what[300], reason[256];
        const char *text;
        size_t nresults;
        int ret = -1;

        newt = rd_kafka_NewTopic_new(topic, partitions, replication, reason,
                                     sizeof(reason));
        if (!newt) {
                snprintf(errstr, errstr_size, "topic %s: %s", topic, reason);
                return -1;
        }

        /* The operation timeout makes the controller answer only once the
         * topic is fully created, so it can be used right away. */
        rkqu = rd_kafka_queue_new(rk);
        options = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
        rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, reason,
                                                    sizeof(reason));
        rd_kafka_CreateTopics(rk, &newt, 1, options, rkqu);
        rd_kafka_AdminOptions_destroy(options);
        rd_kafka_NewTopic_destroy(newt);

        snprintf(what, sizeof(what), "creating topic %s", topic);
        rkev = admin_result(rkqu, timeout_ms, what, errstr, errstr_size);
        if (!rkev)
                goto out;

        results = rd_kafka_CreateTopics_result_topics(
            rd_kafka_event_CreateTopics_result(rkev), &nresults);
        if (nresults != 1) {
                snprintf(errstr, errstr_size, "%s: %zu answers, expected 1",
                         what, nresults);
                goto out;
        }

        err = rd_kafka_topic_result_error(results[0]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                ret = 1;
        } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                ret = 0;
        } else {
                text = rd_kafka_topic_result_error_string(results[0]);
                snprintf(errstr, errstr_size, "%s: %s", what,
                         text && *text ? text : rd_kafka_err2str(err));
        }

out:
        if (rkev)
                rd_kafka_event_destroy(rkev);
        rd_kafka_queue_destroy(rkqu);
        return ret;
}

/* Lists one kind of offset (an rd_kafka_OffsetSpec_t) of partitions
 * 0..count-1 into out[count]. Returns 0 or -1 with errstr set. */
static int list_offsets(rd_kafka_t *rk, const char *topic, int count,
                        int64_t spec, int64_t *out, int timeout_ms,
                        char *errstr, size_t errstr_size) {
        const rd_kafka_ListOffsetsResultInfo_t **infos;
        const rd_kafka_topic_partition_t *rktpar;
        rd_kafka_topic_partition_list_t *rktparlist;
        rd_kafka_AdminOptions_t *options;
        rd_kafka_queue_t *rkqu;
        rd_kafka_event_t *rkev;
        char what[300];
        size_t ninfos, i;
        int p, ret = -1;

        rktparlist = rd_kafka_topic_partition_list_new(count);
        for (p = 0; p < count; p++)
                rd_kafka_topic_partition_list_add(rktparlist, topic, p)
                    ->offset = spec;

        rkqu = rd_kafka_queue_new(rk);
        options = admin_options(rk, RD_KAFKA_ADMIN_OP_LISTOFFSETS, timeout_ms);
        rd_kafka_ListOffsets(rk, rktparlist, options, rkqu);
        rd_kafka_AdminOptions_destroy(options);
        rd_kafka_topic_partition_list_destroy(rktparlist);

        snprintf(what, sizeof(what), "listing the %s offsets of %s",
                 spec == RD_KAFKA_OFFSET_SPEC_EARLIEST ? "earliest" : "end",
                 topic);
        rkev = admin_result(rkqu, timeout_ms, what, errstr, errstr_size);
        if (!rkev)
                goto out;

        for (p = 0; p < count; p++)
                out[p] = -1;
        infos = rd_kafka_ListOffsets_result_infos(
            rd_kafka_event_ListOffsets_result(rkev), &ninfos);
        for (i = 0; i < ninfos; i++) {
                rktpar =
                    rd_kafka_ListOffsetsResultInfo_topic_partition(infos[i]);
                if (rktpar->err) {
                        snprintf(errstr, errstr_size, "%s [%d]: %s", what,
                                 (int)rktpar->partition,
                                 rd_kafka_err2str(rktpar->err));
                        goto out;
                }
                if (rktpar->partition >= 0 && rktpar->partition < count)
                        out[rktpar->partition] = rktpar->offset;
        }
        for (p = 0; p < count; p++) {
                if (out[p] < 0) {
                        snprintf(errstr, errstr_size,
                                 "%s: no answer for partition %d", what, p);
                        goto out;
                }
        }
        ret = 0;

out:
        if (rkev)
                rd_kafka_event_destroy(rkev);
        rd_kafka_queue_destroy(rkqu);
        return ret;
}

int kp_admin_watermarks(rd_kafka_t *rk, const char *topic, int count,
                        int64_t *low, int64_t *high, int timeout_ms,
                        char *errstr, size_t errstr_size) {
        if (list_offsets(rk, topic, count, RD_KAFKA_OFFSET_SPEC_EARLIEST, low,
                         timeout_ms, errstr, errstr_size) == -1)
                return -1;
        return list_offsets(rk, topic, count, RD_KAFKA_OFFSET_SPEC_LATEST, high,
                            timeout_ms, errstr, errstr_size);
}

/* Copies a committed offset's metadata (not NUL-terminated, maybe binary)
 * into out as printable text. */
static void copy_metadata(char *out, size_t size, const void *metadata,
                          size_t len) {
        const unsigned char *s = metadata;
        size_t i, n = 0;

        for (i = 0; s && i < len && s[i] && n + 1 < size; i++)
                out[n++] = (s[i] < 0x20 || s[i] == 0x7f) ? '?' : (char)s[i];
        out[n] = '\0';
}

/* Reads a group-level error: 0 none, 1 the group does not exist (so it
 * has no commits and no members), -1 a failure, with errstr set. */
static int group_error(const rd_kafka_error_t *error, const char *what,
                       char *errstr, size_t errstr_size) {
        rd_kafka_resp_err_t err;

        err = error ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (!err)
                return 0;
        if (err == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND)
                return 1;
        note_error(err);
        snprintf(errstr, errstr_size, "%s: %s", what,
                 rd_kafka_error_string(error));
        return -1;
}

/* Fills rows[].committed and .last_owner from the group's committed
 * offsets. A group that does not exist has committed nothing. */
static int fetch_committed(rd_kafka_t *rk, const char *topic, const char *group,
                           int count, kp_admin_lag_t *rows, int timeout_ms,
                           char *errstr, size_t errstr_size) {
        const rd_kafka_topic_partition_list_t *committed;
        const rd_kafka_group_result_t **groups;
        const rd_kafka_topic_partition_t *rktpar;
        rd_kafka_topic_partition_list_t *rktparlist;
        rd_kafka_ListConsumerGroupOffsets_t *request;
        rd_kafka_AdminOptions_t *options;
        rd_kafka_queue_t *rkqu;
        rd_kafka_event_t *rkev;
        char what[300];
        size_t ngroups;
        int i, p, rc, ret = -1;

        rktparlist = rd_kafka_topic_partition_list_new(count);
        for (p = 0; p < count; p++)
                rd_kafka_topic_partition_list_add(rktparlist, topic, p);
        request = rd_kafka_ListConsumerGroupOffsets_new(group, rktparlist);
        rd_kafka_topic_partition_list_destroy(rktparlist);

        rkqu = rd_kafka_queue_new(rk);
        options = admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
                                timeout_ms);
        rd_kafka_ListConsumerGroupOffsets(rk, &request, 1, options, rkqu);
        rd_kafka_AdminOptions_destroy(options);
        rd_kafka_ListConsumerGroupOffsets_destroy(request);

        snprintf(what, sizeof(what), "listing the offsets of group %s", group);
        rkev = admin_result(rkqu, timeout_ms, what, errstr, errstr_size);
        if (!rkev)
                goto out;

        groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
            rd_kafka_event_ListConsumerGroupOffsets_result(rkev), &ngroups);
        if (ngroups != 1) {
                snprintf(errstr, errstr_size, "%s: %zu answers, expected 1",
                         what, ngroups);
                goto out;
        }
        rc = group_error(rd_kafka_group_result_error(groups[0]), what, errstr,
                         errstr_size);
        if (rc != 0) {
                ret = rc == 1 ? 0 : -1;
                goto out;
        }

        committed = rd_kafka_group_result_partitions(groups[0]);
        for (i = 0; committed && i < committed->cnt; i++) {
                rktpar = &committed->elems[i];
                p = rktpar->partition;
                if (strcmp(rktpar->topic, topic) || p < 0 || p >= count)
                        continue;
                if (rktpar->err) {
                        snprintf(errstr, errstr_size, "%s [%d]: %s", what, p,
                                 rd_kafka_err2str(rktpar->err));
                        goto out;
                }
                if (rktpar->offset < 0)
                        continue;
                rows[p].committed = rktpar->offset;
                copy_metadata(rows[p].last_owner, sizeof(rows[p].last_owner),
                              rktpar->metadata, rktpar->metadata_size);
        }
        ret = 0;

out:
        if (rkev)
                rd_kafka_event_destroy(rkev);
        rd_kafka_queue_destroy(rkqu);
        return ret;
}

/* Marks the partitions of `topic` that `member` holds as owned by it. */
static void mark_owner(const rd_kafka_MemberDescription_t *member,
                       const char *topic, int count, kp_admin_lag_t *rows) {
        const rd_kafka_topic_partition_list_t *assigned;
        const rd_kafka_MemberAssignment_t *assignment;
        const char *name, *host;
        int i, p;

        assignment = rd_kafka_MemberDescription_assignment(member);
        assigned = assignment ? rd_kafka_MemberAssignment_partitions(assignment)
                              : NULL;
        if (!assigned)
                return;

        name = rd_kafka_MemberDescription_group_instance_id(member);
        if (!name || !*name)
                name = rd_kafka_MemberDescription_client_id(member);
        host = rd_kafka_MemberDescription_host(member);
        if (host && *host == '/')
                host++;

        for (i = 0; i < assigned->cnt; i++) {
                p = assigned->elems[i].partition;
                if (strcmp(assigned->elems[i].topic, topic) || p < 0 ||
                    p >= count)
                        continue;
                snprintf(rows[p].owner, sizeof(rows[p].owner), "%s",
                         name ? name : "");
                snprintf(rows[p].owner_host, sizeof(rows[p].owner_host), "%s",
                         host ? host : "");
        }
}

/* Fills rows[].owner from the group's description and *groupp (if not
 * NULL) with its state and member count. */
static int describe_group(rd_kafka_t *rk, const char *topic, const char *group,
                          int count, kp_admin_lag_t *rows,
                          kp_admin_group_t *groupp, int timeout_ms,
                          char *errstr, size_t errstr_size) {
        const rd_kafka_ConsumerGroupDescription_t **descs;
        rd_kafka_AdminOptions_t *options;
        kp_admin_group_t summary;
        rd_kafka_queue_t *rkqu;
        rd_kafka_event_t *rkev;
        char what[300];
        size_t ndescs, i, nmembers;
        int rc, ret = -1;

        memset(&summary, 0, sizeof(summary));
        snprintf(summary.state, sizeof(summary.state), "Dead");

        rkqu = rd_kafka_queue_new(rk);
        options = admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
                                timeout_ms);
        rd_kafka_DescribeConsumerGroups(rk, &group, 1, options, rkqu);
        rd_kafka_AdminOptions_destroy(options);

        snprintf(what, sizeof(what), "describing group %s", group);
        rkev = admin_result(rkqu, timeout_ms, what, errstr, errstr_size);
        if (!rkev)
                goto out;

        descs = rd_kafka_DescribeConsumerGroups_result_groups(
            rd_kafka_event_DescribeConsumerGroups_result(rkev), &ndescs);
        if (ndescs != 1) {
                snprintf(errstr, errstr_size, "%s: %zu answers, expected 1",
                         what, ndescs);
                goto out;
        }

        /* A group nobody joined yet is "Dead" (classic protocol) or not
         * found (consumer protocol): no owners either way. */
        rc = group_error(rd_kafka_ConsumerGroupDescription_error(descs[0]),
                         what, errstr, errstr_size);
        if (rc != 0) {
                ret = rc == 1 ? 0 : -1;
                goto out;
        }

        snprintf(summary.state, sizeof(summary.state), "%s",
                 rd_kafka_consumer_group_state_name(
                     rd_kafka_ConsumerGroupDescription_state(descs[0])));
        nmembers = rd_kafka_ConsumerGroupDescription_member_count(descs[0]);
        summary.members = (int)nmembers;
        for (i = 0; i < nmembers; i++)
                mark_owner(
                    rd_kafka_ConsumerGroupDescription_member(descs[0], i),
                    topic, count, rows);
        ret = 0;

out:
        if (ret == 0 && groupp)
                *groupp = summary;
        if (rkev)
                rd_kafka_event_destroy(rkev);
        rd_kafka_queue_destroy(rkqu);
        return ret;
}

int kp_admin_group_lag(rd_kafka_t *rk, const char *topic, const char *group,
                       int timeout_ms, kp_admin_lag_t **rowsp,
                       kp_admin_group_t *groupp, char *errstr,
                       size_t errstr_size) {
        kp_admin_lag_t *rows = NULL;
        int64_t *low = NULL, *high = NULL, deadline;
        int count, p;

        *rowsp = NULL;
        count = kp_admin_topic_partitions(rk, topic, timeout_ms, errstr,
                                          errstr_size);
        if (count <= 0)
                return -1;

        rows = calloc((size_t)count, sizeof(*rows));
        low = calloc((size_t)count, sizeof(*low));
        high = calloc((size_t)count, sizeof(*high));
        if (!rows || !low || !high) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }

        if (kp_admin_watermarks(rk, topic, count, low, high, timeout_ms, errstr,
                                errstr_size) == -1)
                goto fail;
        for (p = 0; p < count; p++) {
                rows[p].partition = p;
                rows[p].low = low[p];
                rows[p].high = high[p];
                rows[p].committed = -1;
        }

        /* A fresh broker answers "coordinator load in progress" for a
         * while: ask again until the timeout rather than fail. The group
         * is described before its offsets are listed: librdkafka 2.14
         * crashes when ListConsumerGroupOffsets, sent from a client that
         * is not a group member, meets a coordinator that is not ready,
         * and the description succeeds only once the coordinator is. */
        for (deadline = now_ms() + timeout_ms;;) {
                admin_transient = 0;
                if (describe_group(rk, topic, group, count, rows, groupp,
                                   timeout_ms, errstr, errstr_size) == 0 &&
                    fetch_committed(rk, topic, group, count, rows, timeout_ms,
                                    errstr, errstr_size) == 0)
                        break;
                if (!admin_transient || now_ms() + 250 >= deadline)
                        goto fail;
                usleep(250 * 1000);
        }

        /* A partition never committed owes its whole backlog. */
        for (p = 0; p < count; p++) {
                if (rows[p].committed >= 0)
                        rows[p].lag = rows[p].high - rows[p].committed;
                else
                        rows[p].lag = rows[p].high - rows[p].low;
                if (rows[p].lag < 0)
                        rows[p].lag = 0;
        }

        free(low);
        free(high);
        *rowsp = rows;
        return count;

fail:
        free(rows);
        free(low);
        free(high);
        return -1;
}

int kp_admin_lag(rd_kafka_t *rk, const char *topic, const char *group,
                 int timeout_ms, kp_admin_lag_t **rowsp, char *errstr,
                 size_t errstr_size) {
        return kp_admin_group_lag(rk, topic, group, timeout_ms, rowsp, NULL,
                                  errstr, errstr_size);
}
