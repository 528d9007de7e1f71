package drnflow.jvm;

import java.io.Serializable;
import java.util.Properties;

/**
 * The settings the JVM half of the minor-update job needs, handed over from Python
 * (jobs/minor_update_config.py) as flat string properties so py4j needs no custom types.
 * Validation of user input happens in Python; here a missing key is a wiring bug and fails loudly.
 */
public final class JobSettings implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final String KAFKA_CLIENT_PREFIX = "kafka.client.";

    public final String jobName;
    public final String bootstrap;
    public final String groupId;
    public final String impressionsTopic;
    public final String clicksTopic;
    public final String modelWeightsTopic;
    public final String deadLettersTopic;
    public final boolean bounded;
    public final long windowMs;
    public final long attributionWindowMs;
    /** How far from an impression's event time a click may still be matched to it (>= attribution window). */
    public final long clickHorizonMs;
    public final long outOfOrdernessMs;
    /** 0 disables idle-source handling (bounded runs: finished sources release the watermark anyway). */
    public final long idlenessMs;
    /** An event_time further ahead of its record's Kafka timestamp is OUT_OF_RANGE (<= 0: no bound). */
    public final long maxEventTimeSkewMs;
    /**
     * Watermark alignment of the impressions and clicks sources: a source whose watermark is further than
     * this ahead of the other's pauses (0 = off). Bounds what a backlog holds in attribution state.
     */
    public final long maxSourceDriftMs;
    public final String impressionSchema;
    /** The previous release's Impression schema where it differs ("" otherwise): old logged bytes are read with it. */
    public final String previousImpressionSchema;
    /** schemas/pdgd_batch.avsc: the PDGD samples a window row hands the Python step. */
    public final String pdgdBatchSchema;
    public final String clickSchema;
    public final String deadLetterSchema;
    public final String transactionalIdPrefix;
    public final long transactionTimeoutMs;
    /** "partition:offset,..." where the model-weights source starts (the end the Python side read to). */
    public final String modelWeightsStartOffsets;
    /** Fault injection for the exactly-once test: fail once after this many impressions (-1: off). */
    public final long failAfterImpressions;
    public final int failures;
    public final String failMarkerPath;
    /** Slows the impressions source down (test only), so checkpoints happen mid-stream. */
    public final long throttleMicrosPerImpression;
    /** Where throughput probes write their first/last timestamps ("" = no probes). */
    public final String probeDir;
    /** Client properties of every Kafka source and sink (keys "kafka.client.*" without it): credentials. */
    public final Properties kafkaClient;

    private JobSettings(Properties p) {
        jobName = req(p, "job.name");
        bootstrap = req(p, "bootstrap");
        groupId = req(p, "group.id");
        impressionsTopic = req(p, "topic.impressions");
        clicksTopic = req(p, "topic.clicks");
        modelWeightsTopic = req(p, "topic.model-weights");
        deadLettersTopic = req(p, "topic.dead-letters");
        bounded = Boolean.parseBoolean(req(p, "bounded"));
        windowMs = Long.parseLong(req(p, "window.ms"));
        attributionWindowMs = Long.parseLong(req(p, "attribution-window.ms"));
        clickHorizonMs = Long.parseLong(req(p, "click-horizon.ms"));
        outOfOrdernessMs = Long.parseLong(req(p, "out-of-orderness.ms"));
        idlenessMs = Long.parseLong(req(p, "idleness.ms"));
        maxEventTimeSkewMs = Long.parseLong(p.getProperty("max-event-time-skew.ms", "21600000"));
        maxSourceDriftMs = Long.parseLong(req(p, "max-source-drift.ms"));
        impressionSchema = req(p, "schema.impression");
        previousImpressionSchema = p.getProperty("schema.impression.previous", "");
        pdgdBatchSchema = req(p, "schema.pdgd-batch");
        clickSchema = req(p, "schema.click");
        deadLetterSchema = req(p, "schema.dead-letter");
        transactionalIdPrefix = req(p, "sink.transactional-id-prefix");
        transactionTimeoutMs = Long.parseLong(req(p, "sink.transaction-timeout.ms"));
        modelWeightsStartOffsets = p.getProperty("model-weights.start-offsets", "");
        failAfterImpressions = Long.parseLong(p.getProperty("fault.fail-after-impressions", "-1"));
        failMarkerPath = p.getProperty("fault.marker", "");
        failures = Integer.parseInt(p.getProperty("fault.failures", "1"));
        throttleMicrosPerImpression = Long.parseLong(p.getProperty("fault.throttle-us", "0"));
        probeDir = p.getProperty("probe.dir", "");
        kafkaClient = new Properties();
        for (String key : p.stringPropertyNames()) {
            if (key.startsWith(KAFKA_CLIENT_PREFIX)) {
                kafkaClient.setProperty(key.substring(KAFKA_CLIENT_PREFIX.length()), p.getProperty(key));
            }
        }
        if (maxSourceDriftMs < 0) {
            throw new IllegalArgumentException("need max-source-drift.ms >= 0");
        }
        if (windowMs <= 0 || attributionWindowMs < 0 || clickHorizonMs < attributionWindowMs) {
            throw new IllegalArgumentException("need window.ms > 0 and click-horizon.ms >= attribution-window.ms >= 0");
        }
    }

    public static JobSettings from(Properties p) {
        return new JobSettings(p);
    }

    private static String req(Properties p, String key) {
        String v = p.getProperty(key);
        if (v == null) {
            throw new IllegalArgumentException("drnflow-jvm: missing setting '" + key + "'");
        }
        return v;
    }
}
