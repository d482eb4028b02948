/* A program without USDT notes. */
int main(void)
{
	return 0;
}
