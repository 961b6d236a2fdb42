/* A tiny static program that the image-sandbox tests put alone in an almost empty
 * root filesystem: it probes what the sandbox lets it see and do, and can serve HTTP.
 * Every probe prints one line per finding. The tests install it under a unique name,
 * so that its processes can be found from the host by their command line. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int cmd(int argc, char **argv, const char *name, int args) {
    return argc >= 2 + args && strcmp(argv[1], name) == 0;
}

static void serve(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0) {
        printf("cannot listen: %s\n", strerror(errno));
        exit(3);
    }
    printf("listening on %d\n", port);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        char buf[4096];
        (void)read(c, buf, sizeof buf);
        const char *reply = "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";
        (void)write(c, reply, strlen(reply));
        close(c);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (cmd(argc, argv, "say", 1)) {
        for (int i = 2; i < argc; i++) printf("%s\n", argv[i]);
    } else if (cmd(argc, argv, "env", 0)) {
        for (char **e = environ; *e; e++) printf("%s\n", *e);
    } else if (cmd(argc, argv, "id", 0)) {
        printf("uid=%d euid=%d gid=%d egid=%d\n", getuid(), geteuid(), getgid(), getegid());
    } else if (cmd(argc, argv, "pwd", 0)) {
        char cwd[4096];
        printf("%s\n", getcwd(cwd, sizeof cwd) ? cwd : strerror(errno));
    } else if (cmd(argc, argv, "cat", 1)) {
        for (int i = 2; i < argc; i++) {
            FILE *f = fopen(argv[i], "r");
            if (!f) {
                printf("DENIED %s: %s\n", argv[i], strerror(errno));
                continue;
            }
            char line[4096];
            while (fgets(line, sizeof line, f)) fputs(line, stdout);
            fclose(f);
        }
    } else if (cmd(argc, argv, "ls", 1)) {
        DIR *d = opendir(argv[2]);
        if (!d) {
            printf("DENIED %s: %s\n", argv[2], strerror(errno));
            return 0;
        }
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) printf("%s\n", e->d_name);
        closedir(d);
    } else if (cmd(argc, argv, "write", 1)) {
        for (int i = 2; i < argc; i++) {
            int fd = open(argv[i], O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0 && write(fd, "x\n", 2) == 2) printf("WROTE %s\n", argv[i]);
            else printf("REFUSED %s\n", argv[i]);
            if (fd >= 0) close(fd);
        }
    } else if (cmd(argc, argv, "connect", 2)) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons(atoi(argv[3]));
        inet_pton(AF_INET, argv[2], &a.sin_addr);
        printf(connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? "CONNECTED\n" : "REFUSED\n");
    } else if (cmd(argc, argv, "serve", 1)) {
        serve(atoi(argv[2]));
    } else if (cmd(argc, argv, "sleep", 1)) {
        printf("sleeping\n");
        sleep(atoi(argv[2]));
    } else if (cmd(argc, argv, "stubborn", 1)) {
        signal(SIGTERM, SIG_IGN);
        printf("ignoring SIGTERM\n");
        sleep(atoi(argv[2]));
    } else if (cmd(argc, argv, "sleepers", 2)) {
        /* N children that sleep, then the parent sleeps too. */
        for (int i = 0; i < atoi(argv[2]); i++)
            if (fork() == 0) {
                sleep(atoi(argv[3]));
                _exit(0);
            }
        printf("sleeping\n");
        sleep(atoi(argv[3]));
    } else if (cmd(argc, argv, "hog", 1)) {
        /* Allocates and touches N MiB. */
        int mib = atoi(argv[2]);
        for (int i = 0; i < mib; i++) {
            char *block = malloc(1 << 20);
            if (!block) {
                printf("malloc failed after %d MiB\n", i);
                return 1;
            }
            memset(block, 1, 1 << 20);
        }
        printf("touched %d MiB\n", mib);
    } else if (cmd(argc, argv, "forkbomb", 1)) {
        /* Forks up to N children that stay alive; counts the forks that worked. */
        int forked = 0;
        for (int i = 0; i < atoi(argv[2]); i++) {
            pid_t p = fork();
            if (p == 0) {
                sleep(5);
                _exit(0);
            }
            if (p < 0) break;
            forked++;
        }
        printf("forked %d\n", forked);
    } else {
        fprintf(stderr, "usage: probe say|env|id|pwd|cat|ls|write|connect|serve|sleep|stubborn|sleepers|hog|forkbomb\n");
        return 2;
    }
    return 0;
}
