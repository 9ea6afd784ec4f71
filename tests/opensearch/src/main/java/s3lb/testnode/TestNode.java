package s3lb.testnode;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.settings.Settings;
import org.opensearch.core.common.transport.TransportAddress;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * A single-node OpenSearch for s3lb's tests, started from jars on the classpath
 * (the way OpenSearch's own test framework starts MockNode), not from a distribution.
 *
 * <pre>
 * java -Xms512m -Xmx512m -cp 'target/s3lb-testnode-1.jar:target/lib/*' s3lb.testnode.TestNode \
 *      --home DIR [--port-file FILE] [--http-port PORT] [--watch-stdin] [-E key=value ...]
 * </pre>
 *
 * Prints {@code S3LB_TESTNODE_STARTED http=127.0.0.1:PORT} on stdout once the node is started,
 * and writes PORT (atomically) to --port-file. Stops cleanly on SIGTERM/SIGINT, and on
 * stdin EOF when --watch-stdin is given (so a parent that dies takes the node with it).
 */
public final class TestNode {

    /** Node's plugin-taking constructor is protected: this is all MockNode does too. */
    static final class ClasspathPluginNode extends Node {
        ClasspathPluginNode(Settings settings, Collection<Class<? extends Plugin>> plugins) {
            super(
                InternalSettingsPreparer.prepareEnvironment(settings, Collections.emptyMap(), null, () -> "s3lb-test-node"),
                plugins,
                false
            );
        }
    }

    private static void usage(String msg) {
        System.err.println("TestNode: " + msg);
        System.err.println(
            "usage: TestNode --home DIR [--port-file FILE] [--http-port PORT] [--watch-stdin] [-E key=value ...]"
        );
        System.exit(2);
    }

    public static void main(String[] args) throws Exception {
        Path home = null;
        Path portFile = null;
        String httpPort = "0";
        boolean watchStdin = false;
        Settings.Builder extra = Settings.builder();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--home":
                case "--data":
                    if (++i >= args.length) usage(a + " needs a value");
                    home = Paths.get(args[i]).toAbsolutePath();
                    break;
                case "--port-file":
                    if (++i >= args.length) usage(a + " needs a value");
                    portFile = Paths.get(args[i]).toAbsolutePath();
                    break;
                case "--http-port":
                    if (++i >= args.length) usage(a + " needs a value");
                    httpPort = args[i];
                    break;
                case "--watch-stdin":
                    watchStdin = true;
                    break;
                case "-E":
                    if (++i >= args.length) usage("-E needs key=value");
                    int eq = args[i].indexOf('=');
                    if (eq <= 0) usage("-E needs key=value, got " + args[i]);
                    extra.put(args[i].substring(0, eq), args[i].substring(eq + 1));
                    break;
                default:
                    usage("unknown argument " + a);
            }
        }
        if (home == null) usage("--home DIR is required");

        Files.createDirectories(home.resolve("config"));
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));
        Files.createDirectories(home.resolve("plugins"));
        Files.createDirectories(home.resolve("modules"));

        Settings settings = Settings.builder()
            .put("cluster.name", "s3lb-test")
            .put("node.name", "s3lb-test-node")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", "0")
            .put("discovery.type", "single-node")
            // a nearly full disk (CI machines, laptops) must not turn indices read-only
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", "true")
            // nothing to gain from these on a throwaway node
            .put("bootstrap.memory_lock", false)
            .put(extra.build())
            .build();

        List<Class<? extends Plugin>> plugins = List.of(Netty4Plugin.class);
        final Node node;
        try {
            node = new ClasspathPluginNode(settings, plugins);
        } catch (Throwable t) {
            System.err.println("TestNode: node could not be created: " + t);
            t.printStackTrace();
            System.exit(1);
            return;
        }
        final CountDownLatch stopped = new CountDownLatch(1);

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                if (node.awaitClose(20, TimeUnit.SECONDS) == false) {
                    System.err.println("TestNode: node did not close within 20s");
                }
            } catch (IOException | InterruptedException e) {
                System.err.println("TestNode: error while closing: " + e);
            } finally {
                System.out.println("S3LB_TESTNODE_STOPPED");
                System.out.flush();
                stopped.countDown();
            }
        }, "s3lb-testnode-shutdown"));

        if (watchStdin) {
            Thread w = new Thread(() -> {
                try (InputStream in = System.in) {
                    byte[] buf = new byte[256];
                    while (in.read(buf) >= 0) {
                        // ignore anything written; only EOF matters
                    }
                } catch (IOException ignored) {
                    // treat a broken stdin like EOF
                }
                System.exit(0);
            }, "s3lb-testnode-stdin");
            w.setDaemon(true);
            w.start();
        }

        try {
            node.start();
        } catch (Throwable t) {
            System.err.println("TestNode: node failed to start: " + t);
            t.printStackTrace();
            System.exit(1);
        }

        TransportAddress http = node.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress();
        int port = http.getPort();
        if (portFile != null) {
            Path tmp = portFile.resolveSibling(portFile.getFileName() + ".tmp");
            Files.write(tmp, (port + "\n").getBytes(StandardCharsets.US_ASCII));
            Files.move(tmp, portFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
        System.out.println("S3LB_TESTNODE_STARTED http=127.0.0.1:" + port + " pid=" + ProcessHandle.current().pid());
        System.out.flush();

        // Keep the JVM alive until the shutdown hook has closed the node.
        stopped.await();
    }
}
