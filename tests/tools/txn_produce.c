/* txn_produce.c - writes plain-text tasks inside one Kafka transaction,
 * as an upstream service with a transactional producer would. The
 * transaction's commit marker takes an offset of its own, which the
 * worker must commit past for the pool's lag to reach 0.
 *
 *   kpool-txn-produce BROKERS TOPIC PARTITION TEXT...
 *
 * Exit 0 when the transaction committed, 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

static int fail_error(const char *what, rd_kafka_error_t *error) {
        fprintf(stderr, "kpool-txn-produce: %s: %s\n", what,
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return 1;
}

int main(int argc, char **argv) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        rd_kafka_error_t *error;
        char errstr[512], txid[64], *end;
        rd_kafka_t *rk;
        int32_t partition;
        int i, rc = 0;

        if (argc < 5) {
                fprintf(stderr, "usage: kpool-txn-produce BROKERS TOPIC "
                                "PARTITION TEXT...\n");
                return 2;
        }
        partition = (int32_t)strtol(argv[3], &end, 10);
        if (*argv[3] == '\0' || *end != '\0' || partition < 0) {
                fprintf(stderr, "kpool-txn-produce: bad partition '%s'\n",
                        argv[3]);
                return 2;
        }
        snprintf(txid, sizeof(txid), "kpool-txn-test-%d", (int)getpid());
        if (rd_kafka_conf_set(kconf, "bootstrap.servers", argv[1], errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(kconf, "transactional.id", txid, errstr,
                              sizeof(errstr))) {
                fprintf(stderr, "kpool-txn-produce: %s\n", errstr);
                return 2;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "kpool-txn-produce: %s\n", errstr);
                return 1;
        }

        if ((error = rd_kafka_init_transactions(rk, 30000)))
                return fail_error("init_transactions", error);
        if ((error = rd_kafka_begin_transaction(rk)))
                return fail_error("begin_transaction", error);
        for (i = 4; i < argc; i++) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(argv[2]),
                    RD_KAFKA_V_PARTITION(partition),
                    RD_KAFKA_V_VALUE(argv[i], strlen(argv[i])),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (err) {
                        fprintf(stderr, "kpool-txn-produce: produce: %s\n",
                                rd_kafka_err2str(err));
                        rc = 1;
                }
        }
        if (!rc && (error = rd_kafka_commit_transaction(rk, 30000)))
                return fail_error("commit_transaction", error);
        rd_kafka_destroy(rk);
        return rc;
}
