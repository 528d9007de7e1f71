package drnflow.jvm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.SplittableRandom;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.flink.kafka.shaded.org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Benchmark input (bench/bench_minor_update.py): seeded impressions of N slots with logged features and
 * clicks at a given rate, written to Kafka from the JVM because a Python producer would be the
 * bottleneck at millions of records.
 */
public final class BenchData {
    private BenchData() {}

    /**
     * Produces `impressions` impressions and, with probability `ctr` each, one click on a random slot at most
     * `maxClickDelayMs` later (keep it below the watermark's out-of-orderness); returns the number of clicks.
     */
    public static long produce(String bootstrap, String impressionsTopic, String clicksTopic, String impressionSchema,
            String clickSchema, long impressions, int slots, int features, double ctr, long startTime,
            long impressionsPerSecond, long maxClickDelayMs, long seed) throws IOException {
        Schema imp = new Schema.Parser().parse(impressionSchema);
        Schema clk = new Schema.Parser().parse(clickSchema);
        Schema slotSchema = imp.getField("slots").schema().getElementType();
        Schema teamSchema = slotSchema.getField("team").schema();
        GenericDatumWriter<GenericRecord> impWriter = new GenericDatumWriter<>(imp);
        GenericDatumWriter<GenericRecord> clkWriter = new GenericDatumWriter<>(clk);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("linger.ms", "20");
        p.put("batch.size", "262144");
        p.put("compression.type", "none");
        p.put("acks", "1");
        SplittableRandom rng = new SplittableRandom(seed);
        ByteArrayOutputStream buf = new ByteArrayOutputStream(1024);
        BinaryEncoder enc = null;
        long clicks = 0;
        List<Float> stateFeatures = new ArrayList<>();
        for (int k = 0; k < features; k++) {
            stateFeatures.add((float) k / features);
        }
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (long i = 0; i < impressions; i++) {
                String rid = "b" + seed + "-" + i;
                long t = startTime + i * 1000 / impressionsPerSecond;
                GenericRecord r = new GenericData.Record(imp);
                r.put("request_id", rid);
                r.put("user_id", "u" + (i % 1000));
                r.put("event_time", t);
                r.put("model_id", "m" + (i % 2));
                r.put("model_version", 0L);
                r.put("explore_seed", 1000L + (t / 60000));
                List<GenericRecord> slotList = new ArrayList<>(slots);
                for (int s = 0; s < slots; s++) {
                    GenericRecord sr = new GenericData.Record(slotSchema);
                    sr.put("item_id", "item" + rng.nextInt(100000));
                    sr.put("position", s);
                    sr.put("team", new GenericData.EnumSymbol(teamSchema, s % 2 == 0 ? "EXPLORE" : "CURRENT"));
                    List<Float> f = new ArrayList<>(features);
                    for (int k = 0; k < features; k++) {
                        f.add((float) rng.nextDouble());
                    }
                    sr.put("features", f);
                    sr.put("explore_seed", null);
                    slotList.add(sr);
                }
                r.put("slots", slotList);
                r.put("state_features", stateFeatures);
                r.put("explore_seeds", new ArrayList<Long>());
                r.put("interleaving", "team_draft");
                r.put("generator", null);
                buf.reset();
                enc = EncoderFactory.get().binaryEncoder(buf, enc);
                impWriter.write(r, enc);
                enc.flush();
                byte[] key = rid.getBytes(StandardCharsets.UTF_8);
                producer.send(new ProducerRecord<>(impressionsTopic, key, buf.toByteArray()));
                if (rng.nextDouble() < ctr) {
                    GenericRecord c = new GenericData.Record(clk);
                    c.put("request_id", rid);
                    c.put("item_id", ((GenericRecord) slotList.get(rng.nextInt(slots))).get("item_id"));
                    c.put("event_time", t + rng.nextLong(Math.max(1, maxClickDelayMs)));
                    c.put("user_id", null);
                    buf.reset();
                    enc = EncoderFactory.get().binaryEncoder(buf, enc);
                    clkWriter.write(c, enc);
                    enc.flush();
                    producer.send(new ProducerRecord<>(clicksTopic, key, buf.toByteArray()));
                    clicks++;
                }
            }
            producer.flush();
        }
        return clicks;
    }
}
